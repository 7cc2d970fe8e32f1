// Package fake provides a runtime.Session for tests that need no engine: an encoder whose
// outputs are a deterministic function of each row's tokens, so batching code can be checked
// against one-at-a-time results exactly.
package fake

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergo/infergo/runtime"
)

// Encoder is a fake BERT-like encoder with inputs input_ids, attention_mask and
// token_type_ids ([batch, seq] int64) and outputs last_hidden_state [batch, seq, Hidden] and
// pooled [batch, Hidden]. Token t of a row gets hidden[k] = id*(k+1) + type + position/1000,
// zero where the mask is 0; pooled is the mask-weighted sum of the rows.
type Encoder struct {
	Hidden int
	// Delay, if set, is how long each Run takes (it honours ctx while waiting).
	Delay time.Duration
	// DelayOf, if set, overrides Delay with a per-run value (run counts from 1).
	DelayOf func(run int64) time.Duration
	// Hook, if set, runs at the start of every Run with the batch shape.
	Hook func(batch, seq int64)

	runs     atomic.Int64
	mu       sync.Mutex
	shapes   [][2]int64
	closed   atomic.Bool
	running  atomic.Int64
	maxPar   atomic.Int64
	prealloc atomic.Int64
}

var _ runtime.Session = (*Encoder)(nil)

// Info implements runtime.Session.
func (e *Encoder) Info() runtime.ModelInfo {
	dyn := []int64{-1, -1}
	return runtime.ModelInfo{
		Inputs: []runtime.ValueInfo{
			{Name: "input_ids", DType: runtime.Int64, Shape: dyn},
			{Name: "attention_mask", DType: runtime.Int64, Shape: dyn},
			{Name: "token_type_ids", DType: runtime.Int64, Shape: dyn},
		},
		Outputs: []runtime.ValueInfo{
			{Name: "last_hidden_state", DType: runtime.Float32, Shape: []int64{-1, -1, int64(e.Hidden)}},
			{Name: "pooled", DType: runtime.Float32, Shape: []int64{-1, int64(e.Hidden)}},
		},
	}
}

// Run implements runtime.Session.
func (e *Encoder) Run(ctx context.Context, in []runtime.Tensor, out []runtime.Tensor) error {
	if e.closed.Load() {
		return runtime.ErrClosed
	}
	n := e.running.Add(1)
	defer e.running.Add(-1)
	for {
		m := e.maxPar.Load()
		if n <= m || e.maxPar.CompareAndSwap(m, n) {
			break
		}
	}
	if len(in) != 3 || len(out) != 2 {
		return fmt.Errorf("fake: want 3 inputs and 2 outputs, got %d and %d", len(in), len(out))
	}
	ids, mask, types := in[0].Int64s(), in[1].Int64s(), in[2].Int64s()
	b, s := in[0].Shape[0], in[0].Shape[1]
	if e.Hook != nil {
		e.Hook(b, s)
	}
	run := e.runs.Add(1)
	e.mu.Lock()
	e.shapes = append(e.shapes, [2]int64{b, s})
	e.mu.Unlock()
	delay := e.Delay
	if e.DelayOf != nil {
		delay = e.DelayOf(run)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fake: run: %w", ctx.Err())
		case <-t.C:
		}
	}
	h := int64(e.Hidden)
	hidden := make([]float32, b*s*h)
	pooled := make([]float32, b*h)
	for r := int64(0); r < b; r++ {
		for p := int64(0); p < s; p++ {
			i := r*s + p
			if mask[i] == 0 {
				continue
			}
			for k := int64(0); k < h; k++ {
				v := float32(ids[i]*(k+1)+types[i]) + float32(p)/1000
				hidden[i*h+k] = v
				pooled[r*h+k] += v
			}
		}
	}
	for i, t := range []runtime.Tensor{runtime.NewTensor([]int64{b, s, h}, hidden), runtime.NewTensor([]int64{b, h}, pooled)} {
		if out[i].Data == nil {
			out[i] = t
			continue
		}
		// A preallocated slot: write in place, as ONNX Runtime does, after checking the shape.
		dst, ok := out[i].Data.([]float32)
		if !ok || !equalShape(out[i].Shape, t.Shape) || len(dst) != t.Len() {
			return fmt.Errorf("fake: output %d preallocated as %v, want float32%v", i, out[i], t.Shape)
		}
		copy(dst, t.Float32s())
		e.prealloc.Add(1)
	}
	return nil
}

func equalShape(a, b []int64) bool {
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

// Preallocated returns how many outputs were written into buffers the caller provided.
func (e *Encoder) Preallocated() int64 { return e.prealloc.Load() }

// Close implements runtime.Session.
func (e *Encoder) Close() error { e.closed.Store(true); return nil }

// Runs returns how many times Run was called.
func (e *Encoder) Runs() int64 { return e.runs.Load() }

// Shapes returns the [batch, seq] shape of every Run so far.
func (e *Encoder) Shapes() [][2]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][2]int64(nil), e.shapes...)
}

// MaxParallel returns the largest number of Run calls seen in flight at once.
func (e *Encoder) MaxParallel() int64 { return e.maxPar.Load() }

// Row computes what Encoder returns for one unpadded sequence on its own:
// last_hidden_state rows [len(ids), Hidden] and pooled [Hidden].
func Row(hiddenSize int, ids, types []int64) (hidden, pooled []float32) {
	h := int64(hiddenSize)
	hidden = make([]float32, int64(len(ids))*h)
	pooled = make([]float32, h)
	for p := range ids {
		for k := int64(0); k < h; k++ {
			v := float32(ids[p]*(k+1)+types[p]) + float32(p)/1000
			hidden[int64(p)*h+k] = v
			pooled[k] += v
		}
	}
	return hidden, pooled
}
