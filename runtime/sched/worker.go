package sched

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergo/infergo/runtime"
)

// batch is a set of sequences run together, padded to the longest.
type batch struct {
	items   []*item
	longest int
	tokens  int
	solo    bool // the only work in the scheduler: runs on Config.Solo
}

type worker struct {
	s       *Scheduler
	session runtime.Session
	batches chan *batch
	base    context.Context // cancelled when the scheduler aborts

	// Buffers reused from batch to batch (see inputs.go and outputs.go).
	in    inputScratch
	slots []runtime.Tensor
	bufs  [][]float32
	views []runtime.Tensor

	freeAt time.Time // when the worker last became free
}

func (w *worker) loop(ready chan<- *worker, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		w.freeAt = time.Now()
		ready <- w
		b, ok := <-w.batches
		if !ok {
			return
		}
		w.execute(b)
	}
}

// batchContext is cancelled when every request in the batch has gone (or the scheduler
// aborts), so a batch nobody waits for stops early.
func batchContext(base context.Context, items []*item) (context.Context, func()) {
	ctx, cancel := context.WithCancel(base)
	seen := make(map[*request]bool, len(items))
	var live atomic.Int64
	var stops []func() bool
	for _, it := range items {
		if seen[it.req] {
			continue
		}
		seen[it.req] = true
		live.Add(1)
		stops = append(stops, context.AfterFunc(it.req.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

func (w *worker) execute(b *batch) {
	s := w.s
	start := time.Now()
	for _, it := range b.items {
		s.cfg.Observer.Queued(start.Sub(it.enqueued))
	}
	n, L := len(b.items), b.longest
	ctx, release := batchContext(w.base, b.items)
	inputs := s.layout.build(b, s.cfg.PadID, &w.in)
	// The worker's own output buffers may be reused only if no result keeps a view of them.
	reuse := true
	for _, it := range b.items {
		if it.req.reduce == nil {
			reuse = false
			break
		}
	}
	outputs := w.outputSlots(n, L, reuse)
	runStart := time.Now()
	session := w.session
	if b.solo {
		session = s.cfg.Solo
	}
	err := session.Run(ctx, inputs, outputs)
	// The model is free before the results go out, so a request that follows its answer at
	// once can find nothing running (and go solo).
	s.running.Add(-1)
	release()
	runEnd := time.Now()
	if err != nil {
		err = fmt.Errorf("sched: run batch of %d×%d: %w", n, L, err)
		for _, it := range b.items {
			it.req.finish(it.index, Result{}, err)
		}
	} else {
		for i, out := range outputs {
			s.outputs[i].learn(out, n, L)
		}
		w.deliver(b, outputs, start, runEnd.Sub(start))
	}
	s.cfg.Observer.Batch(BatchStats{
		Size: n, Tokens: b.tokens, PaddedTokens: L * n, Inference: runEnd.Sub(runStart),
		Prepare: runStart.Sub(start), Finish: time.Since(runEnd), Dispatch: max(0, start.Sub(dispatchFrom(w.freeAt, b))), Solo: b.solo, Err: err,
	})
}

// dispatchFrom is when the batch could have started: once the worker was free and the
// batch's oldest sequence (its anchor, the oldest in the queue) had arrived.
func dispatchFrom(freeAt time.Time, b *batch) time.Time {
	oldest := b.items[0].enqueued
	for _, it := range b.items[1:] {
		if it.enqueued.Before(oldest) {
			oldest = it.enqueued
		}
	}
	if oldest.After(freeAt) {
		return oldest
	}
	return freeAt
}

// deliver hands every sequence its rows of the outputs, reduced on the worker when its
// request asked for it.
func (w *worker) deliver(b *batch, outputs []runtime.Tensor, start time.Time, elapsed time.Duration) {
	info := w.session.Info()
	if len(w.views) != len(outputs) {
		w.views = make([]runtime.Tensor, len(outputs))
	}
	for i, it := range b.items {
		res := Result{Queue: start.Sub(it.enqueued), Inference: elapsed, BatchSize: len(b.items)}
		var err error
		views := w.views
		if it.req.reduce == nil {
			views = make([]runtime.Tensor, len(outputs)) // the result keeps them
		}
		longest, length := b.rowSpan(it) // feature rows are not cut (features.go)
		for j, out := range outputs {
			if views[j], err = rowsOf(out, i, len(b.items), longest, length); err != nil {
				err = fmt.Errorf("sched: output %q: %w", info.Outputs[j].Name, err)
				break
			}
		}
		switch {
		case err != nil:
		case it.req.reduce != nil:
			res.Outputs, err = it.req.reduce(it.index, views)
		default:
			res.Outputs = views
		}
		it.req.finish(it.index, res, err)
	}
}

// rowsOf returns row i of a batch output without copying: [n, rest...] → [rest...], and for
// token-level outputs [n, L, rest...] → [length, rest...] (not when longest < 0).
func rowsOf(t runtime.Tensor, i, n, longest, length int) (runtime.Tensor, error) {
	if len(t.Shape) == 0 || t.Shape[0] != int64(n) {
		return runtime.Tensor{}, fmt.Errorf("shape %v does not start with the batch size %d", t.Shape, n)
	}
	rowShape := append([]int64(nil), t.Shape[1:]...)
	rowSize := runtime.Elements(rowShape)
	lo, hi := int64(i)*rowSize, int64(i+1)*rowSize
	if len(t.Shape) >= 3 && longest >= 0 {
		if t.Shape[1] != int64(longest) {
			return runtime.Tensor{}, fmt.Errorf("token-level shape %v does not match the batch length %d", t.Shape, longest)
		}
		tokenSize := rowSize / int64(longest)
		hi = lo + int64(length)*tokenSize
		rowShape[0] = int64(length)
	}
	var data any
	switch d := t.Data.(type) {
	case []float32:
		data = d[lo:hi:hi]
	case []uint16:
		data = d[lo:hi:hi]
	case []int64:
		data = d[lo:hi:hi]
	case []int32:
		data = d[lo:hi:hi]
	case []bool:
		data = d[lo:hi:hi]
	case []uint8:
		data = d[lo:hi:hi]
	case []int8:
		data = d[lo:hi:hi]
	case []float64:
		data = d[lo:hi:hi]
	default:
		return runtime.Tensor{}, fmt.Errorf("unsupported data %T", t.Data)
	}
	return runtime.Tensor{Shape: rowShape, Data: data}, nil
}
