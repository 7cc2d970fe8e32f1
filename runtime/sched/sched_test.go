package sched

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/fake"
)

const hidden = 4

func newSched(t *testing.T, cfg Config, sessions ...runtime.Session) *Scheduler {
	t.Helper()
	if len(sessions) == 0 {
		sessions = []runtime.Session{&fake.Encoder{Hidden: hidden}}
	}
	s, err := New(sessions, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func randomSeq(r *rand.Rand, minLen, maxLen int) Sequence {
	n := minLen + r.Intn(maxLen-minLen+1)
	seq := Sequence{IDs: make([]int32, n), TypeIDs: make([]int32, n)}
	for i := range seq.IDs {
		seq.IDs[i] = int32(1 + r.Intn(1000))
		if i > n/2 {
			seq.TypeIDs[i] = 1
		}
	}
	return seq
}

func wantRow(seq Sequence) (hiddenRows, pooled []float32) {
	ids := make([]int64, len(seq.IDs))
	types := make([]int64, len(seq.IDs))
	for i := range ids {
		ids[i] = int64(seq.IDs[i])
		if seq.TypeIDs != nil {
			types[i] = int64(seq.TypeIDs[i])
		}
	}
	return fake.Row(hidden, ids, types)
}

func checkResult(t *testing.T, seq Sequence, res Result) {
	t.Helper()
	h, p := wantRow(seq)
	got := res.Outputs[0]
	if len(got.Shape) != 2 || got.Shape[0] != int64(len(seq.IDs)) || got.Shape[1] != hidden {
		t.Fatalf("token output shape %v, want [%d %d]", got.Shape, len(seq.IDs), hidden)
	}
	if !equalF32(got.Float32s(), h) {
		t.Fatalf("token rows differ from a lone run")
	}
	if gp := res.Outputs[1]; len(gp.Shape) != 1 || !equalF32(gp.Float32s(), p) {
		t.Fatalf("pooled row differs from a lone run: %v", gp.Shape)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBatchedEqualsAlone: many concurrent requests of random lengths, batched, each get
// exactly the rows a lone run gives, and batches respect both budgets.
func TestBatchedEqualsAlone(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, Delay: 200 * time.Microsecond}
	s := newSched(t, Config{MaxBatchTokens: 256, MaxBatchSize: 16}, enc, enc)
	var wg sync.WaitGroup
	for c := 0; c < 32; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(c)))
			for k := 0; k < 20; k++ {
				seqs := make([]Sequence, 1+r.Intn(3))
				for i := range seqs {
					seqs[i] = randomSeq(r, 1, 40)
				}
				res, err := s.Submit(context.Background(), seqs)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range seqs {
					checkResult(t, seqs[i], res[i])
				}
			}
		}(c)
	}
	wg.Wait()
	batched := 0
	for _, sh := range enc.Shapes() {
		if sh[0]*sh[1] > 256 && sh[0] > 1 {
			t.Errorf("batch %v exceeds the token budget 256", sh)
		}
		if sh[0] > 16 {
			t.Errorf("batch %v exceeds the batch size 16", sh)
		}
		if sh[0] > 1 {
			batched++
		}
	}
	if batched == 0 {
		t.Error("32 concurrent clients never shared a batch")
	}
	if enc.MaxParallel() < 2 {
		t.Errorf("two workers never ran at once (max parallel %d)", enc.MaxParallel())
	}
}

// TestLengthGrouping: with a mixed backlog, batches group similar lengths, so padding stays
// far below what arrival order would cost.
func TestLengthGrouping(t *testing.T) {
	gate := make(chan struct{})
	var first atomic.Bool
	enc := &fake.Encoder{Hidden: hidden, Hook: func(b, s int64) {
		if first.CompareAndSwap(false, true) {
			<-gate // hold the worker so a backlog builds
		}
	}}
	s := newSched(t, Config{MaxBatchTokens: 1 << 20, MaxBatchSize: 8}, enc)
	var wg sync.WaitGroup
	submit := func(n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := Sequence{IDs: make([]int32, n)}
			for i := range seq.IDs {
				seq.IDs[i] = 7
			}
			if _, err := s.Submit(context.Background(), []Sequence{seq}); err != nil {
				t.Error(err)
			}
		}()
	}
	submit(1) // occupies the worker
	waitFor(t, func() bool { return first.Load() })
	for k := 0; k < 8; k++ { // alternate short and long in arrival order
		submit(4)
		submit(100)
	}
	waitFor(t, func() bool { return s.InFlight() == 17 })
	time.Sleep(10 * time.Millisecond) // let every submission reach the queue
	close(gate)
	wg.Wait()
	for _, sh := range enc.Shapes()[1:] {
		if sh[0] != 8 || (sh[1] != 4 && sh[1] != 100) {
			t.Errorf("batch %v mixes lengths; want 8×4 and 8×100", sh)
		}
	}
}

// TestNoStarvation: a long sequence queued behind a steady stream of short ones is served
// in the next batch, because the oldest sequence always anchors a batch.
func TestNoStarvation(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, Delay: time.Millisecond}
	s := newSched(t, Config{MaxBatchTokens: 64, MaxBatchSize: 64}, enc)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Submit(context.Background(), []Sequence{{IDs: []int32{1, 2}}})
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	long := Sequence{IDs: make([]int32, 500)}
	for i := range long.IDs {
		long.IDs[i] = 3
	}
	start := time.Now()
	res, err := s.Submit(context.Background(), []Sequence{long})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, long, res[0])
	if d := time.Since(start); d > time.Second {
		t.Errorf("long sequence waited %v behind short ones", d)
	}
}

// TestCancelledBeforeBatching: a request whose context ends while queued never reaches the
// model, and Run returns at once.
func TestCancelledBeforeBatching(t *testing.T) {
	gate := make(chan struct{})
	var seen sync.Map
	enc := &fake.Encoder{Hidden: hidden}
	enc.Hook = func(b, s int64) {
		seen.Store(s, true)
		if s == 1 {
			<-gate
		}
	}
	s := newSched(t, Config{}, enc)
	busy := make(chan error, 1)
	go func() { _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); busy <- err }()
	waitFor(t, func() bool { _, ok := seen.Load(int64(1)); return ok })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := s.Submit(ctx, []Sequence{{IDs: make([]int32, 33)}}); errc <- err }()
	deadlineCtx, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	errd := make(chan error, 1)
	go func() { _, err := s.Submit(deadlineCtx, []Sequence{{IDs: make([]int32, 44)}}); errd <- err }()
	waitFor(t, func() bool { return s.InFlight() == 3 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Run: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled Run did not return")
	}
	if err := <-errd; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out Run: %v", err)
	}
	close(gate)
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	// One more request flushes the batcher; the cancelled lengths must never have run.
	if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{5, 5}}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []int64{33, 44} {
		if _, ok := seen.Load(l); ok {
			t.Errorf("cancelled sequence of length %d reached the model", l)
		}
	}
}

// TestBatchCancelledWhenAllRequestsLeave: a running batch whose only request is cancelled
// is terminated rather than run to completion.
func TestBatchCancelledWhenAllRequestsLeave(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, DelayOf: func(run int64) time.Duration {
		if run == 1 {
			return 10 * time.Second
		}
		return 0
	}}
	s := newSched(t, Config{}, enc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Submit(ctx, []Sequence{{IDs: []int32{1}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit: %v", err)
	}
	// The worker must be free again well before the fake's 10 s delay.
	if _, err := s.Submit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := s.Submit(ctx, []Sequence{{IDs: []int32{2}}})
		return err == nil
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("abandoned batch held the worker for %v", d)
	}
}

// TestOverloadFailsFast: beyond MaxConcurrentRequests, Admit fails at once.
func TestOverloadFailsFast(t *testing.T) {
	gate := make(chan struct{})
	enc := &fake.Encoder{Hidden: hidden, Hook: func(int64, int64) { <-gate }}
	obs := &countingObserver{}
	s := newSched(t, Config{MaxConcurrentRequests: 2, Observer: obs}, enc)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, func() bool { return s.InFlight() == 2 })
	start := time.Now()
	_, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}})
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third request: %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("rejection took %v", d)
	}
	if obs.rejected.Load() != 1 {
		t.Errorf("observer saw %d rejections", obs.rejected.Load())
	}
	close(gate)
	wg.Wait()
	if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); err != nil {
		t.Fatalf("after the load passed: %v", err)
	}
}

// TestClientBatchSplit: one request with more sequences than a batch holds is split across
// batches and reassembled in order.
func TestClientBatchSplit(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden}
	s := newSched(t, Config{MaxBatchSize: 4, MaxBatchTokens: 1 << 20}, enc)
	r := rand.New(rand.NewSource(1))
	seqs := make([]Sequence, 37)
	for i := range seqs {
		seqs[i] = randomSeq(r, 1, 30)
	}
	res, err := s.Submit(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range seqs {
		checkResult(t, seqs[i], res[i])
	}
	if runs := enc.Runs(); runs < 10 {
		t.Errorf("37 sequences ran in %d batches of at most 4", runs)
	}
}

// TestHoldForTokenizingRequests: a request admitted but still tokenizing gets to join the
// batch of one that is already queued.
func TestHoldForTokenizingRequests(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden}
	s := newSched(t, Config{MaxQueueDelay: 300 * time.Millisecond}, enc)
	a, err := s.Admit()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Admit()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(context.Background(), []Sequence{{IDs: []int32{1, 2}}}) }()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond) // still "tokenizing"
		b.Run(context.Background(), []Sequence{{IDs: []int32{3, 4}}})
	}()
	wg.Wait()
	if sh := enc.Shapes(); len(sh) != 1 || sh[0][0] != 2 {
		t.Errorf("batches %v, want one batch of 2", sh)
	}
}

func TestTicketRelease(t *testing.T) {
	s := newSched(t, Config{MaxConcurrentRequests: 1})
	tk, err := s.Admit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admit(); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second Admit: %v", err)
	}
	tk.Release()
	tk.Release()
	if s.InFlight() != 0 {
		t.Fatalf("in flight %d after Release", s.InFlight())
	}
	if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); err != nil {
		t.Fatal(err)
	}
}

func TestBadSequences(t *testing.T) {
	s := newSched(t, Config{})
	if _, err := s.Submit(context.Background(), []Sequence{{}}); err == nil {
		t.Error("empty sequence accepted")
	}
	if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1, 2}, TypeIDs: []int32{0}}}); err == nil {
		t.Error("mismatched type ids accepted")
	}
	if s.InFlight() != 0 {
		t.Errorf("rejected requests left %d in flight", s.InFlight())
	}
}

// TestCloseDrains: Close lets queued work finish, then refuses new requests.
func TestCloseDrains(t *testing.T) {
	gate := make(chan struct{})
	enc := &fake.Encoder{Hidden: hidden, Hook: func(int64, int64) { <-gate }}
	s, err := New([]runtime.Session{enc}, Config{MaxBatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); err == nil {
				ok.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return s.InFlight() == 10 })
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	waitFor(t, func() bool {
		tk, err := s.Admit()
		if err == nil {
			tk.Release()
		}
		return errors.Is(err, ErrClosed)
	})
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Errorf("%d of 10 queued requests finished across Close", ok.Load())
	}
	if _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}

// TestCloseDeadline: when Close's context ends, queued work fails with ErrClosed and the
// running batch is cancelled; nothing hangs.
func TestCloseDeadline(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, Delay: time.Hour}
	s, err := New([]runtime.Session{enc}, Config{MaxBatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := s.Submit(context.Background(), []Sequence{{IDs: []int32{1}}}); errs <- err }()
	}
	waitFor(t, func() bool { return s.InFlight() == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a request succeeded through an aborted close")
			}
		case <-time.After(time.Second):
			t.Fatal("request hung after Close")
		}
	}
}

func TestUnsupportedGraph(t *testing.T) {
	// Neither input_ids nor a feature input (features.go): nothing to feed.
	info := runtime.ModelInfo{Inputs: []runtime.ValueInfo{{Name: "token_type_ids", DType: runtime.Int64}}}
	if _, err := New([]runtime.Session{infoSession{info}}, Config{}); err == nil {
		t.Error("graph without input_ids accepted")
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("no sessions accepted")
	}
}

type infoSession struct{ info runtime.ModelInfo }

func (s infoSession) Info() runtime.ModelInfo                                       { return s.info }
func (s infoSession) Run(context.Context, []runtime.Tensor, []runtime.Tensor) error { return nil }
func (s infoSession) Close() error                                                  { return nil }

type countingObserver struct {
	rejected, dropped, batches atomic.Int64
}

func (o *countingObserver) Rejected()            { o.rejected.Add(1) }
func (o *countingObserver) Queued(time.Duration) {}
func (o *countingObserver) Dropped()             { o.dropped.Add(1) }
func (o *countingObserver) Batch(BatchStats)     { o.batches.Add(1) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSoloSession: a batch that is the only work runs on Config.Solo; work that arrives
// while it runs does not wait for it but starts on a worker's own session; both get the rows
// a lone run gives.
func TestSoloSession(t *testing.T) {
	started := make(chan struct{}, 1)
	gate := make(chan struct{})
	solo := &fake.Encoder{Hidden: hidden, Hook: func(int64, int64) {
		started <- struct{}{}
		<-gate
	}}
	own := &fake.Encoder{Hidden: hidden}
	s := newSched(t, Config{Workers: 2, Solo: solo}, own)
	ctx := context.Background()
	first := Sequence{IDs: []int32{5, 6, 7}}
	done := make(chan error, 1)
	go func() {
		res, err := s.Submit(ctx, []Sequence{first})
		if err == nil {
			checkResult(t, first, res[0])
		}
		done <- err
	}()
	<-started // the lone request runs on the solo session and is held there
	second := Sequence{IDs: []int32{8, 9}}
	res, err := s.Submit(ctx, []Sequence{second})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, second, res[0])
	if own.Runs() != 1 {
		t.Errorf("own session ran %d batches; want the second request there while the solo run is held", own.Runs())
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if solo.Runs() != 1 {
		t.Errorf("solo session ran %d batches, want the first request's", solo.Runs())
	}
	// Idle again: the next lone request goes solo.
	go func() { <-started }()
	res, err = s.Submit(ctx, []Sequence{first})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, first, res[0])
	if solo.Runs() != 2 || own.Runs() != 1 {
		t.Errorf("runs: own %d, solo %d; want the third request solo", own.Runs(), solo.Runs())
	}
}
