package sched

import (
	"sync/atomic"

	"github.com/infergo/infergo/runtime"
)

// Output buffers. Left to itself, ONNX Runtime allocates each output in its arena and
// onnxruntime_go copies it into a fresh Go slice: for a batch of 32 passages that is 12.6 MB
// allocated, copied and left to the garbage collector per Run. When the shape of an output
// can be predicted, the worker hands the engine a Go buffer to write into instead, and when
// every request of the batch reduces its rows on the worker (RunReduce), the buffer is the
// worker's own and is reused for the next batch.
//
// The prediction is the encoder convention: the first dimension is the batch, the second
// (of rank-3+ outputs) the sequence, the rest fixed. It is trusted only after the engine
// itself produced an output of exactly the predicted shape once, so a graph that names its
// dimensions otherwise keeps engine-allocated outputs.

type outputPlan struct {
	dims []int64 // declared dimensions, -1 for symbolic ones
	// predictable: float32 with a symbolic batch dimension, a symbolic or absent sequence
	// dimension, and every other dimension fixed.
	predictable bool
	confirmed   atomic.Bool
}

func newOutputPlans(info runtime.ModelInfo) []*outputPlan {
	plans := make([]*outputPlan, len(info.Outputs))
	for i, o := range info.Outputs {
		p := &outputPlan{dims: o.Shape}
		p.predictable = o.DType == runtime.Float32 && len(o.Shape) >= 1 && o.Shape[0] < 0
		for d := 1; d < len(o.Shape) && p.predictable; d++ {
			if o.Shape[d] < 0 && !(d == 1 && len(o.Shape) >= 3) {
				p.predictable = false
			}
			if o.Shape[d] == 0 {
				p.predictable = false
			}
		}
		plans[i] = p
	}
	return plans
}

// shape is the predicted shape of the output for an n×L batch.
func (p *outputPlan) shape(n, L int) []int64 {
	s := make([]int64, len(p.dims))
	copy(s, p.dims)
	s[0] = int64(n)
	if len(s) >= 3 && s[1] < 0 {
		s[1] = int64(L)
	}
	return s
}

// learn confirms the prediction when the engine allocated t with exactly the predicted shape.
func (p *outputPlan) learn(t runtime.Tensor, n, L int) {
	if !p.predictable || p.confirmed.Load() {
		return
	}
	if _, ok := t.Data.([]float32); !ok {
		return
	}
	want := p.shape(n, L)
	if len(t.Shape) != len(want) {
		return
	}
	for i := range want {
		if t.Shape[i] != want[i] {
			return
		}
	}
	p.confirmed.Store(true)
}

// outputSlots prepares the output slots of a batch: preallocated buffers for the outputs
// whose shape is known (the worker's own when reuse is true, else fresh ones that the
// results may keep), empty slots for the engine to fill otherwise.
func (w *worker) outputSlots(n, L int, reuse bool) []runtime.Tensor {
	plans := w.s.outputs
	if len(w.slots) != len(plans) {
		w.slots = make([]runtime.Tensor, len(plans))
		w.bufs = make([][]float32, len(plans))
	}
	for i, p := range plans {
		w.slots[i] = runtime.Tensor{}
		if !p.confirmed.Load() {
			continue
		}
		shape := p.shape(n, L)
		size := int(runtime.Elements(shape))
		var buf []float32
		if reuse {
			if cap(w.bufs[i]) < size {
				w.bufs[i] = make([]float32, size, size+size/4)
			}
			buf = w.bufs[i][:size]
		} else {
			buf = make([]float32, size)
		}
		w.slots[i] = runtime.NewTensor(shape, buf)
	}
	return w.slots
}
