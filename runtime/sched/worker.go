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
}

type worker struct {
	s       *Scheduler
	session runtime.Session
	batches chan *batch
	base    context.Context // cancelled when the scheduler aborts
}

func (w *worker) loop(ready chan<- *worker, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
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
	ctx, release := batchContext(w.base, b.items)
	inputs := s.layout.build(b, s.cfg.PadID)
	outputs := make([]runtime.Tensor, len(w.session.Info().Outputs))
	err := w.session.Run(ctx, inputs, outputs)
	release()
	elapsed := time.Since(start)
	s.cfg.Observer.Batch(BatchStats{
		Size: len(b.items), Tokens: b.tokens, PaddedTokens: b.longest * len(b.items),
		Inference: elapsed, Err: err,
	})
	if err != nil {
		err = fmt.Errorf("sched: run batch of %d×%d: %w", len(b.items), b.longest, err)
		for _, it := range b.items {
			it.req.finish(it.index, Result{}, err)
		}
		return
	}
	for i, it := range b.items {
		res := Result{Outputs: make([]runtime.Tensor, len(outputs)), Queue: start.Sub(it.enqueued), Inference: elapsed, BatchSize: len(b.items)}
		var serr error
		longest, length := b.rowSpan(it) // feature rows are not cut (features.go)
		for j, out := range outputs {
			if res.Outputs[j], serr = rowsOf(out, i, len(b.items), longest, length); serr != nil {
				serr = fmt.Errorf("sched: output %q: %w", w.session.Info().Outputs[j].Name, serr)
				break
			}
		}
		it.req.finish(it.index, res, serr)
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
