package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergo/infergo/pipelines"
)

// holder owns the model being served. Every model installed becomes a generation with a
// reference count: a request acquires the current generation and releases it when its
// response is built. A swap therefore takes effect for new requests at once, requests in
// flight finish on the model they started with, and the old model is closed only after its
// last reference is gone: zero failed requests across a hot swap.
type holder struct {
	cur atomic.Pointer[generation]
	log *slog.Logger
	// closeTimeout bounds Model.Close of a retired generation (its requests have finished by
	// then, so Close only tears the scheduler and sessions down).
	closeTimeout time.Duration

	mu       sync.Mutex
	ready    chan struct{} // closed once a model is set, loading fails, or the holder closes
	isReady  bool
	loadErr  error // the failed initial load, reported on every POST until a model is set
	stopping bool  // shutdown started: requests no longer wait for a model to load
	closed   bool
	sets     int            // models installed so far
	retiring sync.WaitGroup // retirements in progress (Add under mu)
	// live holds models installed and not yet closed: one still retiring must not be
	// installed again, or its pending Close would hit it while it serves.
	live map[*pipelines.Model]bool
}

type generation struct {
	model   *pipelines.Model
	refs    atomic.Int64 // the holder's own reference plus one per request
	drained chan struct{}
}

func newHolder(log *slog.Logger, closeTimeout time.Duration) *holder {
	return &holder{log: log, closeTimeout: closeTimeout, ready: make(chan struct{}), live: map[*pipelines.Model]bool{}}
}

// tryRef takes a reference unless the generation has already drained.
func (g *generation) tryRef() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops one reference; the last one wakes the retirement.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		close(g.drained)
	}
}

// errNoModel is returned by acquire when there is nothing to serve.
var errNoModel = errors.New("server: no model")

// acquire returns the current generation with a reference held; the caller must release it.
// While the first model is loading it waits, bounded by ctx.
func (h *holder) acquire(ctx context.Context) (*generation, error) {
	for {
		if g := h.cur.Load(); g != nil {
			if g.tryRef() {
				return g, nil
			}
			// g drained between Load and tryRef, so cur already points to its successor.
			continue
		}
		h.mu.Lock()
		ready, closed, loadErr := h.ready, h.closed || h.stopping, h.loadErr
		h.mu.Unlock()
		switch {
		case closed:
			return nil, &httpError{kind: kindUnavailable, msg: msgShutdown, cause: errNoModel}
		case loadErr != nil:
			// aic answers a failed load with 500 and the loader's exception text.
			return nil, &httpError{kind: kindLoadFailed, msg: loadErr.Error(), cause: loadErr}
		}
		// ready closes when a model is set, the load fails or shutdown starts: each of those
		// changes what the next iteration sees.
		select {
		case <-ready:
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errRequestTimeout) {
				return nil, &httpError{kind: kindUnavailable, msg: msgLoading, cause: ctx.Err()}
			}
			return nil, classify(ctx, ctx.Err(), true)
		}
	}
}

// current returns the served model without taking a reference (for /info and /health).
func (h *holder) current() *pipelines.Model {
	if g := h.cur.Load(); g != nil {
		return g.model
	}
	return nil
}

// loadError returns the initial load failure, if any and no model has been set since.
func (h *holder) loadError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.loadErr
}

// set installs m and retires the previous model in the background. It reports false (and
// closes m) when the holder is closed. onlyFirst installs m only if no model was ever set:
// the background load must not replace a model set meanwhile by SetModel.
func (h *holder) set(m *pipelines.Model, onlyFirst bool) bool {
	h.mu.Lock()
	if h.closed || (onlyFirst && h.sets > 0) {
		h.mu.Unlock()
		h.closeModel(m, "model not installed")
		return false
	}
	if old := h.cur.Load(); old != nil && old.model == m {
		h.mu.Unlock()
		return true // already serving it; retiring it would close a live model
	}
	if h.live[m] {
		h.mu.Unlock()
		h.log.Error("model not installed: it is still being replaced", "model", m.Info.ModelID)
		return false
	}
	h.live[m] = true
	g := &generation{model: m, drained: make(chan struct{})}
	g.refs.Store(1)
	old := h.cur.Swap(g)
	h.sets++
	h.loadErr = nil
	h.markReadyLocked()
	if old != nil {
		h.retiring.Add(1)
	}
	h.mu.Unlock()
	if old != nil {
		go func() {
			defer h.retiring.Done()
			old.release()
			<-old.drained
			h.closeModel(old.model, "model replaced")
			h.mu.Lock()
			delete(h.live, old.model)
			h.mu.Unlock()
		}()
	}
	return true
}

// stop wakes requests waiting for the first model: during shutdown they get 503 rather
// than waiting for a load that is being cancelled. A model already served stays in use.
func (h *holder) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopping = true
	h.markReadyLocked()
}

// fail records a failed initial load, unless a model has been set meanwhile or shutdown
// cancelled the load.
func (h *holder) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.stopping || h.sets > 0 {
		return
	}
	h.loadErr = err
	h.markReadyLocked()
}

func (h *holder) markReadyLocked() {
	if !h.isReady {
		h.isReady = true
		close(h.ready)
	}
}

// close stops serving: new acquires fail, the current model is closed once its requests
// have finished (or ctx ends), and retirements in progress are awaited.
func (h *holder) close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.markReadyLocked()
	g := h.cur.Swap(nil)
	h.mu.Unlock()

	var errs []error
	if g != nil {
		g.release()
		select {
		case <-g.drained:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("server: waiting for %d requests on the model: %w", g.refs.Load(), ctx.Err()))
		}
		if err := g.model.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server: close model: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { h.retiring.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("server: waiting for replaced models to close: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

func (h *holder) closeModel(m *pipelines.Model, why string) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.closeTimeout)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		h.log.Error("close model", "why", why, "model", m.Info.ModelID, "err", err)
		return
	}
	h.log.Info("model closed", "why", why, "model", m.Info.ModelID)
}
