package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
)

func quietHolder() *holder {
	return newHolder(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
}

// countingModel returns a model whose Close increments closed.
func countingModel(id string, closed *atomic.Int64) *pipelines.Model {
	return pipelines.NewModel(pipelines.Info{ModelID: id}, func(context.Context) error {
		closed.Add(1)
		return nil
	})
}

func TestHolderWaitsForFirstModel(t *testing.T) {
	h := quietHolder()
	var closed atomic.Int64
	got := make(chan *generation, 1)
	go func() {
		g, err := h.acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	select {
	case <-got:
		t.Fatal("acquire returned before any model was set")
	case <-time.After(50 * time.Millisecond):
	}
	m := countingModel("a", &closed)
	h.set(m, true)
	g := <-got
	if g.model != m {
		t.Fatal("wrong model")
	}
	g.release()
	// onlyFirst: the background load loses against a model already set.
	var closedB atomic.Int64
	if h.set(countingModel("b", &closedB), true) || closedB.Load() != 1 {
		t.Error("a late first load must be refused and closed")
	}
	if err := h.close(context.Background()); err != nil || closed.Load() != 1 {
		t.Errorf("close: %v, closed %d", err, closed.Load())
	}
	if _, err := h.acquire(context.Background()); kindOf(err) != kindUnavailable {
		t.Errorf("acquire after close: %v", err)
	}
}

func kindOf(err error) kind {
	var he *httpError
	if errors.As(err, &he) {
		return he.kind
	}
	return 255
}

func TestHolderLoadFailureAndTimeout(t *testing.T) {
	h := quietHolder()
	ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Millisecond, errRequestTimeout)
	defer cancel()
	if _, err := h.acquire(ctx); kindOf(err) != kindUnavailable || err.(*httpError).msg != msgLoading {
		t.Errorf("timeout while loading: %v", err)
	}
	h.fail(errors.New("boom"))
	_, err := h.acquire(context.Background())
	if kindOf(err) != kindLoadFailed || err.(*httpError).msg != "boom" {
		t.Errorf("after failed load: %v", err)
	}
	var closed atomic.Int64
	h.set(countingModel("a", &closed), false)
	if g, err := h.acquire(context.Background()); err != nil {
		t.Errorf("after SetModel: %v", err)
	} else {
		g.release()
	}
	h.fail(errors.New("late")) // a model is served: ignored
	if h.loadError() != nil {
		t.Error("late failure recorded")
	}
}

func TestHolderSwapWaitsForReferences(t *testing.T) {
	h := quietHolder()
	var closedA, closedB atomic.Int64
	a := countingModel("a", &closedA)
	h.set(a, false)
	g, _ := h.acquire(context.Background())
	h.set(countingModel("b", &closedB), false)
	time.Sleep(20 * time.Millisecond)
	if closedA.Load() != 0 {
		t.Fatal("old model closed while referenced")
	}
	if g2, _ := h.acquire(context.Background()); g2.model.Info.ModelID != "b" {
		t.Fatal("new requests must get the new model")
	} else {
		g2.release()
	}
	if h.set(a, false) || closedA.Load() != 0 {
		t.Fatal("a model still retiring must not be installed again")
	}
	g.release()
	deadline := time.Now().Add(2 * time.Second)
	for closedA.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if closedA.Load() != 1 {
		t.Fatal("old model not closed after its last reference")
	}
	if h.set(h.current(), false); closedB.Load() != 0 {
		t.Fatal("setting the served model again must not close it")
	}
	if err := h.close(context.Background()); err != nil || closedB.Load() != 1 {
		t.Errorf("close: %v %d", err, closedB.Load())
	}
}

func TestHolderCloseDeadline(t *testing.T) {
	h := quietHolder()
	var closed atomic.Int64
	h.set(countingModel("a", &closed), false)
	g, _ := h.acquire(context.Background())
	defer g.release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.close(ctx); !errors.Is(err, context.DeadlineExceeded) || closed.Load() != 1 {
		t.Errorf("close with a request stuck: %v, closed %d", err, closed.Load())
	}
}

// TestHolderConcurrentSwaps hammers acquire/release against swaps: every acquire succeeds,
// no model is used after its Close, every replaced model is closed exactly once.
func TestHolderConcurrentSwaps(t *testing.T) {
	h := quietHolder()
	const n = 30
	type tracked struct {
		m      *pipelines.Model
		closed atomic.Int64
		refs   atomic.Int64
	}
	ms := make([]*tracked, n)
	byID := map[string]*tracked{}
	for i := range ms {
		tr := &tracked{}
		id := string(rune('A' + i))
		tr.m = pipelines.NewModel(pipelines.Info{ModelID: id}, func(context.Context) error {
			if tr.refs.Load() != 0 {
				t.Errorf("model %s closed with %d users", id, tr.refs.Load())
			}
			tr.closed.Add(1)
			return nil
		})
		ms[i], byID[id] = tr, tr
	}
	h.set(ms[0].m, false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				runtime.Gosched() // let the swapping goroutine run on a 2-core machine
				select {
				case <-stop:
					return
				default:
				}
				g, err := h.acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				tr := byID[g.model.Info.ModelID]
				tr.refs.Add(1)
				if tr.closed.Load() != 0 {
					t.Error("acquired a closed model")
				}
				tr.refs.Add(-1)
				g.release()
			}
		}()
	}
	for i := 1; i < n; i++ {
		time.Sleep(time.Millisecond)
		h.set(ms[i].m, false)
	}
	close(stop)
	wg.Wait()
	if err := h.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, tr := range ms {
		if tr.closed.Load() != 1 {
			t.Errorf("model %d closed %d times", i, tr.closed.Load())
		}
	}
}
