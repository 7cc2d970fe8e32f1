package sched

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countDecoder is a fake Decoder: a sequence's tokens are start, start+1, …; it finishes with
// FinishEOS after the token equal to eos (if eos > 0). It checks the loop's contract: Release
// exactly once per prefilled sequence, no Step on a released or unknown sequence, one call
// at a time.
type countDecoder struct {
	delay     time.Duration
	failStep  atomic.Int64 // fail the step with this number (1-based), 0: never
	panicStep atomic.Int64
	failJoin  func(s *Seq) bool

	mu       sync.Mutex
	held     map[*Seq]bool
	released map[*Seq]int
	steps    int64
	sizes    []int // live batch size of each Step
	maxLive  int
	busy     atomic.Bool
	errs     []string
}

type countState struct {
	start, eos int32
	last       int32
}

func newCountDecoder() *countDecoder {
	return &countDecoder{held: map[*Seq]bool{}, released: map[*Seq]int{}}
}

func (d *countDecoder) enter() func() {
	if !d.busy.CompareAndSwap(false, true) {
		d.fail("concurrent decoder calls")
	}
	return func() { d.busy.Store(false) }
}

func (d *countDecoder) fail(msg string) {
	d.mu.Lock()
	d.errs = append(d.errs, msg)
	d.mu.Unlock()
}

func (d *countDecoder) Prefill(ctx context.Context, join []*Seq) error {
	defer d.enter()()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range join {
		if d.failJoin != nil && d.failJoin(s) {
			return errors.New("bad prompt")
		}
	}
	for _, s := range join {
		st := s.State.(*countState)
		d.held[s] = true
		st.last = st.start
		s.Emit(Token{ID: st.last})
		if st.eos > 0 && st.last == st.eos {
			s.Finish(FinishEOS)
		}
	}
	return nil
}

func (d *countDecoder) Step(ctx context.Context, live []*Seq) error {
	defer d.enter()()
	d.mu.Lock()
	d.steps++
	n := d.steps
	d.sizes = append(d.sizes, len(live))
	d.maxLive = max(d.maxLive, len(live))
	for _, s := range live {
		if !d.held[s] {
			d.errs = append(d.errs, "step on a sequence not held")
		}
	}
	d.mu.Unlock()
	if d.panicStep.Load() == n {
		panic("boom")
	}
	if d.failStep.Load() == n {
		return errors.New("model failed")
	}
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, s := range live {
		st := s.State.(*countState)
		st.last++
		s.Emit(Token{ID: st.last, LogProb: -1})
		if st.eos > 0 && st.last == st.eos {
			s.Finish(FinishEOS)
		}
	}
	return nil
}

func (d *countDecoder) Release(s *Seq) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.released[s]++
	if d.released[s] > 1 {
		d.errs = append(d.errs, "released twice")
	}
	delete(d.held, s)
}

func (d *countDecoder) check(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.errs {
		t.Error(e)
	}
	if len(d.held) != 0 {
		t.Errorf("%d sequences never released", len(d.held))
	}
}

func newLoop(t *testing.T, d Decoder, cfg DecodeConfig) *DecodeLoop {
	t.Helper()
	l, err := NewDecodeLoop(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func seq(start, eos int32, maxSteps int) *Seq {
	return &Seq{Cost: 10, MaxSteps: maxSteps, State: &countState{start: start, eos: eos}}
}

// drain reads a stream to its end.
func drain(t testing.TB, st *Stream) ([]int32, error) {
	var ids []int32
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		tok, err := st.Next(ctx)
		if err != nil {
			if err == io.EOF {
				return ids, nil
			}
			return ids, err
		}
		ids = append(ids, tok.ID)
	}
}

func start(t testing.TB, l *DecodeLoop, ctx context.Context, seqs ...*Seq) []*Stream {
	t.Helper()
	tk, err := l.Admit()
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	sts, err := tk.Start(ctx, seqs...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return sts
}

func want(start int32, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = start + int32(i)
	}
	return out
}

func TestDecodeLengthAndEOS(t *testing.T) {
	d := newCountDecoder()
	l := newLoop(t, d, DecodeConfig{})
	sts := start(t, l, context.Background(), seq(100, 0, 5), seq(7, 9, 50))
	ids, err := drain(t, sts[0])
	if err != nil || fmt.Sprint(ids) != fmt.Sprint(want(100, 5)) || sts[0].Reason() != FinishLength {
		t.Errorf("length: %v %v %v", ids, err, sts[0].Reason())
	}
	ids, err = drain(t, sts[1])
	if err != nil || fmt.Sprint(ids) != fmt.Sprint(want(7, 3)) || sts[1].Reason() != FinishEOS {
		t.Errorf("eos: %v %v %v", ids, err, sts[1].Reason())
	}
	waitUntil(t, func() bool { return l.InFlight() == 0 })
	d.check(t)
}

// Sequences that join while others run share their steps and produce what they produce
// alone; the batch grows and shrinks between steps.
func TestDecodeContinuousBatching(t *testing.T) {
	d := newCountDecoder()
	d.delay = time.Millisecond
	l := newLoop(t, d, DecodeConfig{MaxBatchSize: 8})
	rng := rand.New(rand.NewPCG(1, 2))
	type res struct {
		start int32
		n     int
		ids   []int32
		err   error
	}
	var wg sync.WaitGroup
	out := make(chan res, 40)
	for i := 0; i < 40; i++ {
		startID, n := int32(rng.IntN(1000)), 1+rng.IntN(30)
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond) // join mid-generation
		sts := start(t, l, context.Background(), seq(startID, 0, n))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, err := drain(t, sts[0])
			out <- res{startID, n, ids, err}
		}()
	}
	wg.Wait()
	close(out)
	for r := range out {
		if r.err != nil || fmt.Sprint(r.ids) != fmt.Sprint(want(r.start, r.n)) {
			t.Errorf("start %d n %d: %v %v", r.start, r.n, r.ids, r.err)
		}
	}
	d.mu.Lock()
	maxLive, sizes := d.maxLive, len(d.sizes)
	d.mu.Unlock()
	if maxLive < 2 || maxLive > 8 {
		t.Errorf("max live batch %d, want 2..8", maxLive)
	}
	if sizes >= 40*15 {
		t.Errorf("%d steps: sequences did not share steps", sizes)
	}
	waitUntil(t, func() bool { return l.InFlight() == 0 })
	d.check(t)
}

func TestDecodeBudget(t *testing.T) {
	d := newCountDecoder()
	d.delay = 2 * time.Millisecond
	l := newLoop(t, d, DecodeConfig{MaxBatchTokens: 25}) // 10 per sequence: two fit
	var all []*Stream
	for i := 0; i < 6; i++ {
		all = append(all, start(t, l, context.Background(), seq(int32(i*100), 0, 4))...)
	}
	big := &Seq{Cost: 1000, MaxSteps: 3, State: &countState{start: 5}}
	all = append(all, start(t, l, context.Background(), big)...)
	for _, st := range all {
		if _, err := drain(t, st); err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.maxLive != 2 {
		t.Errorf("max live %d, want 2 under a budget of 25", d.maxLive)
	}
}

// A burst of arrivals joins over several prefills under MaxPrefillTokens, with decode steps
// in between.
func TestDecodePrefillBudget(t *testing.T) {
	d := newCountDecoder()
	obs := &recObserver{}
	l := newLoop(t, d, DecodeConfig{MaxPrefillTokens: 20, Observer: obs})
	tk, _ := l.Admit()
	var seqs []*Seq
	for i := 0; i < 6; i++ {
		s := seq(int32(i*100), 0, 5)
		s.Prompt = 10 // two per prefill
		seqs = append(seqs, s)
	}
	seqs = append(seqs, &Seq{Cost: 1, Prompt: 500, MaxSteps: 2, State: &countState{}}) // over budget: alone
	sts, err := tk.Start(context.Background(), seqs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if _, err := drain(t, st); err != nil {
			t.Fatal(err)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.prefills != 4 || obs.maxJoin != 2 {
		t.Errorf("%d prefills of at most %d sequences, want 4 of at most 2", obs.prefills, obs.maxJoin)
	}
}

func TestDecodeCancelStopDeadline(t *testing.T) {
	d := newCountDecoder()
	d.delay = 2 * time.Millisecond
	obs := &recObserver{}
	l := newLoop(t, d, DecodeConfig{Observer: obs})
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := start(t, l, ctx, seq(0, 0, 10000))[0]
	stopped := start(t, l, context.Background(), seq(0, 0, 0))[0]
	timed := &Seq{Cost: 1, Deadline: time.Now().Add(20 * time.Millisecond), State: &countState{}}
	timedSt := start(t, l, context.Background(), timed)[0]

	readN := func(st *Stream, n int) {
		for i := 0; i < n; i++ {
			if _, err := st.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	readN(cancelled, 3)
	cancel()
	if _, err := drain(t, cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	readN(stopped, 3)
	stopped.Stop()
	if _, err := drain(t, stopped); err != nil || stopped.Reason() != FinishStopped {
		t.Errorf("stopped: %v %v", err, stopped.Reason())
	}
	if _, err := drain(t, timedSt); err != nil || timedSt.Reason() != FinishTime {
		t.Errorf("deadline: %v %v", err, timedSt.Reason())
	}
	waitUntil(t, func() bool { return l.InFlight() == 0 })
	// The cancelled sequence left long before its 10,000 steps: it stopped consuming steps
	// (with 2 ms per step, a few more than the 3 read here, however loaded the machine).
	if n := obs.cancelledTokens(); n < 3 || n >= 1000 {
		t.Errorf("cancelled sequence emitted %d tokens", n)
	}
	d.check(t)

	// A request cancelled before it joins never reaches the decoder.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tk, _ := l.Admit()
	if _, err := tk.Start(ctx2, seq(1, 0, 3)); !errors.Is(err, context.Canceled) {
		t.Errorf("start with a cancelled ctx: %v", err)
	}
	tk.Release()
}

func TestDecodeOverload(t *testing.T) {
	d := newCountDecoder()
	d.delay = time.Millisecond
	l := newLoop(t, d, DecodeConfig{MaxConcurrentRequests: 2})
	a := start(t, l, context.Background(), seq(0, 0, 20), seq(0, 0, 25))
	t2, err := l.Admit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third Admit: %v, want ErrOverloaded", err)
	}
	t2.Release()
	t2.Release() // idempotent
	t3, err := l.Admit()
	if err != nil {
		t.Fatalf("Admit after Release: %v", err)
	}
	t3.Release()
	drain(t, a[0])
	if l.InFlight() != 1 {
		t.Errorf("in flight %d while one of two sequences runs", l.InFlight())
	}
	drain(t, a[1])
	waitUntil(t, func() bool { return l.InFlight() == 0 })
}

func TestDecodeFailures(t *testing.T) {
	d := newCountDecoder()
	d.failJoin = func(s *Seq) bool { return s.State.(*countState).start == 666 }
	l := newLoop(t, d, DecodeConfig{})
	if _, err := drain(t, start(t, l, context.Background(), seq(666, 0, 5))[0]); err == nil {
		t.Error("failed prefill: no error")
	}
	// A failed step fails every live sequence; the loop goes on.
	d.failStep.Store(d.stepsNow() + 2)
	sts := start(t, l, context.Background(), seq(0, 0, 50), seq(10, 0, 50))
	for _, st := range sts {
		if _, err := drain(t, st); err == nil || !containsErr(err, "model failed") {
			t.Errorf("failed step: %v", err)
		}
	}
	d.panicStep.Store(d.stepsNow() + 1)
	if _, err := drain(t, start(t, l, context.Background(), seq(0, 0, 50))[0]); err == nil || !containsErr(err, "panic") {
		t.Errorf("panic: %v", err)
	}
	ids, err := drain(t, start(t, l, context.Background(), seq(3, 0, 3))[0])
	if err != nil || len(ids) != 3 {
		t.Errorf("after failures: %v %v", ids, err)
	}
	waitUntil(t, func() bool { return l.InFlight() == 0 })
	d.check(t)
}

func (d *countDecoder) stepsNow() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.steps
}

func containsErr(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

func TestDecodeCloseDrains(t *testing.T) {
	d := newCountDecoder()
	d.delay = time.Millisecond
	l, err := NewDecodeLoop(d, DecodeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sts := start(t, l, context.Background(), seq(0, 0, 30))
	late, _ := l.Admit() // admitted before Close, still tokenizing
	closed := make(chan error, 1)
	go func() { closed <- l.Close(context.Background()) }()
	waitUntil(t, func() bool {
		tk, err := l.Admit()
		if err == nil {
			tk.Release()
		}
		return errors.Is(err, ErrClosed)
	})
	lateSt, err := late.Start(context.Background(), seq(5, 0, 4))
	if err != nil {
		t.Fatalf("admitted request started during drain: %v", err)
	}
	ids, err := drain(t, sts[0])
	if err != nil || len(ids) != 30 {
		t.Errorf("drained sequence: %d tokens, %v", len(ids), err)
	}
	if ids, err := drain(t, lateSt[0]); err != nil || len(ids) != 4 {
		t.Errorf("late sequence: %v %v", ids, err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	d.check(t)
}

func TestDecodeCloseHard(t *testing.T) {
	d := newCountDecoder()
	d.delay = 5 * time.Millisecond
	l, err := NewDecodeLoop(d, DecodeConfig{MaxBatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	sts := start(t, l, context.Background(), seq(0, 0, 0), seq(0, 0, 0)) // never finish by themselves
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	for i, st := range sts {
		if _, err := drain(t, st); !errors.Is(err, ErrClosed) {
			t.Errorf("stream %d after hard close: %v", i, err)
		}
	}
	tk, err := l.Admit()
	if !errors.Is(err, ErrClosed) || tk != nil {
		t.Errorf("Admit after Close: %v", err)
	}
	if l.InFlight() != 0 {
		t.Errorf("in flight after close: %d", l.InFlight())
	}
	d.check(t)
}

func TestDecodeStartErrors(t *testing.T) {
	l := newLoop(t, newCountDecoder(), DecodeConfig{})
	tk, _ := l.Admit()
	if _, err := tk.Start(context.Background()); err == nil {
		t.Error("no sequences: no error")
	}
	if _, err := tk.Start(context.Background(), &Seq{}); err == nil {
		t.Error("zero cost: no error")
	}
	s := seq(1, 0, 1)
	if _, err := tk.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Start(context.Background(), seq(1, 0, 1)); err == nil {
		t.Error("second Start: no error")
	}
	tk2, _ := l.Admit()
	if _, err := tk2.Start(context.Background(), s); err == nil {
		t.Error("restarting a sequence: no error")
	}
	tk2.Release()
	if _, err := NewDecodeLoop(nil, DecodeConfig{}); err == nil {
		t.Error("nil decoder: no error")
	}
}

type recObserver struct {
	mu       sync.Mutex
	tokens   []int
	steps    int
	prefills int
	maxJoin  int
}

func (o *recObserver) Rejected()            {}
func (o *recObserver) Joined(time.Duration) {}
func (o *recObserver) Step(s StepStats) {
	o.mu.Lock()
	o.steps++
	if s.Prefill {
		o.prefills++
		o.maxJoin = max(o.maxJoin, s.Size)
	}
	o.mu.Unlock()
}
func (o *recObserver) Finished(r FinishReason, err error, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		o.tokens = append(o.tokens, n)
	}
}

func (o *recObserver) cancelledTokens() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.tokens) != 1 {
		return -1
	}
	return o.tokens[0]
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
