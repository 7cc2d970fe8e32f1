package sched

import (
	"context"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/fake"
)

// copyReducer keeps a private copy of every output, as a pooling reducer keeps its vector.
func copyReducer(_ int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
	kept := make([]runtime.Tensor, len(outs))
	for i, o := range outs {
		kept[i] = runtime.NewTensor(append([]int64(nil), o.Shape...), append([]float32(nil), o.Float32s()...))
	}
	return kept, nil
}

// TestReducedResultsSurviveBufferReuse: with reducers, workers reuse their input and output
// buffers from batch to batch; every result must still equal a lone run after many later
// batches have overwritten those buffers, and mixing reducing and plain requests must not
// hand a plain request a buffer that is reused.
func TestReducedResultsSurviveBufferReuse(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, Delay: 100 * time.Microsecond}
	s := newSched(t, Config{MaxBatchTokens: 512, MaxBatchSize: 16}, enc, enc)
	type done struct {
		seqs []Sequence
		res  []Result
	}
	var mu sync.Mutex
	var all []done
	var wg sync.WaitGroup
	for c := 0; c < 24; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(c)))
			for k := 0; k < 25; k++ {
				seqs := make([]Sequence, 1+r.Intn(3))
				for i := range seqs {
					seqs[i] = randomSeq(r, 1, 40)
				}
				tk, err := s.Admit()
				if err != nil {
					t.Error(err)
					return
				}
				var res []Result
				if c%3 == 0 {
					res, err = tk.Run(context.Background(), seqs) // views into a fresh buffer
				} else {
					res, err = tk.RunReduce(context.Background(), seqs, copyReducer)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, done{seqs, res})
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	for _, d := range all { // checked only now, after every buffer has been reused many times
		for i := range d.seqs {
			checkResult(t, d.seqs[i], d.res[i])
		}
	}
	if enc.Preallocated() == 0 {
		t.Error("the workers never preallocated outputs after the engine confirmed their shapes")
	}
}

// TestReducerReceivesIndexAndErrors: the reducer gets each sequence's position in its
// request, and a reducer error fails the request.
func TestReducerReceivesIndexAndErrors(t *testing.T) {
	s := newSched(t, Config{}, &fake.Encoder{Hidden: hidden})
	seqs := []Sequence{{IDs: []int32{1, 2, 3}}, {IDs: []int32{4}}, {IDs: []int32{5, 6}}}
	tk, _ := s.Admit()
	res, err := tk.RunReduce(context.Background(), seqs, func(i int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
		return []runtime.Tensor{runtime.NewTensor([]int64{2}, []float32{float32(i), float32(outs[0].Shape[0])})}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		got := r.Outputs[0].Float32s()
		if got[0] != float32(i) || got[1] != float32(len(seqs[i].IDs)) {
			t.Errorf("sequence %d: reducer saw index %v and %v rows", i, got[0], got[1])
		}
	}
	tk, _ = s.Admit()
	if _, err := tk.RunReduce(context.Background(), seqs, func(int, []runtime.Tensor) ([]runtime.Tensor, error) {
		return nil, context.Canceled
	}); err == nil {
		t.Error("a failing reducer did not fail the request")
	}
}

func TestOutputPlans(t *testing.T) {
	info := runtime.ModelInfo{Outputs: []runtime.ValueInfo{
		{Name: "last_hidden_state", DType: runtime.Float32, Shape: []int64{-1, -1, 8}},
		{Name: "pooler_output", DType: runtime.Float32, Shape: []int64{-1, 8}},
		{Name: "logits_2d_seq", DType: runtime.Float32, Shape: []int64{-1, -1}},
		{Name: "ids", DType: runtime.Int64, Shape: []int64{-1, -1, 3}},
		{Name: "odd", DType: runtime.Float32, Shape: []int64{-1, -1, -1}},
	}}
	plans := newOutputPlans(info)
	for i, want := range []bool{true, true, false, false, false} {
		if plans[i].predictable != want {
			t.Errorf("%s: predictable %v, want %v", info.Outputs[i].Name, plans[i].predictable, want)
		}
	}
	p := plans[0]
	p.learn(runtime.Zeros[float32](3, 5, 9), 3, 5) // wrong hidden size: not confirmed
	if p.confirmed.Load() {
		t.Error("a mismatched shape confirmed the prediction")
	}
	p.learn(runtime.Zeros[float32](3, 5, 8), 3, 5)
	if !p.confirmed.Load() {
		t.Error("the predicted shape was not confirmed")
	}
	if got := plans[1].shape(4, 7); len(got) != 2 || got[0] != 4 || got[1] != 8 {
		t.Errorf("pooled shape %v", got)
	}
}
