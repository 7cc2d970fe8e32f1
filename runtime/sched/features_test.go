package sched

import (
	"context"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/fake"
)

func featureSeq(r *rand.Rand, name string, shape ...int64) Sequence {
	v := make([]float32, runtime.Elements(shape))
	for i := range v {
		v[i] = float32(r.Intn(200)-100) / 16
	}
	return Sequence{Features: map[string]runtime.Tensor{name: runtime.NewTensor(shape, v)}}
}

// lone runs seq through a fresh session on its own.
func lone(t *testing.T, enc *fake.FeatureEncoder, seq Sequence) []runtime.Tensor {
	t.Helper()
	s := newSched(t, Config{}, &fake.FeatureEncoder{Input: enc.Input, Dims: enc.Dims, Hidden: enc.Hidden, Mask: enc.Mask})
	res, err := s.Submit(context.Background(), []Sequence{seq})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Outputs
}

// submitTogether admits every sequence first and then runs them concurrently, so the batcher
// sees them all before it forms a batch.
func submitTogether(t *testing.T, s *Scheduler, seqs []Sequence) []Result {
	t.Helper()
	tickets := make([]*Ticket, len(seqs))
	for i := range seqs {
		tk, err := s.Admit()
		if err != nil {
			t.Fatal(err)
		}
		tickets[i] = tk
	}
	out := make([]Result, len(seqs))
	errs := make([]error, len(seqs))
	var wg sync.WaitGroup
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := tickets[i].Run(context.Background(), seqs[i:i+1])
			if err == nil {
				out[i] = res[0]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("sequence %d: %v", i, err)
		}
	}
	return out
}

// sameRows checks got against want, comparing the first rows of token-level outputs only
// (a padded row has more).
func sameRows(t *testing.T, got, want []runtime.Tensor) {
	t.Helper()
	for j := range want {
		w, g := want[j].Float32s(), got[j].Float32s()
		if len(g) < len(w) {
			t.Fatalf("output %d: %d values, want at least %d", j, len(g), len(w))
		}
		if !equalF32(g[:len(w)], w) {
			t.Fatalf("output %d differs from a lone run", j)
		}
	}
}

func TestFeaturesFixedShapeBatch(t *testing.T) {
	enc := &fake.FeatureEncoder{Input: "input_features", Dims: []int64{4, 6}, Hidden: 3}
	// Each sequence costs 24 elements: a budget of 96 allows 4 per batch.
	s := newSched(t, Config{MaxBatchTokens: 96, MaxQueueDelay: time.Second}, enc)
	r := rand.New(rand.NewSource(1))
	seqs := make([]Sequence, 10)
	for i := range seqs {
		seqs[i] = featureSeq(r, "input_features", 4, 6)
	}
	res := submitTogether(t, s, seqs)
	for i, seq := range seqs {
		want := lone(t, enc, seq)
		if got := res[i].Outputs[0].Shape; len(got) != 2 || got[0] != 4 || got[1] != 3 {
			t.Fatalf("row shape %v, want [4 3]", got)
		}
		sameRows(t, res[i].Outputs, want)
	}
	sizes := 0
	for _, sh := range enc.Shapes() {
		if sh[0] > 4 {
			t.Fatalf("batch of %d exceeds the element budget", sh[0])
		}
		sizes += int(sh[0])
	}
	if sizes != len(seqs) || len(enc.Shapes()) > 4 {
		t.Fatalf("batches %v: want the 10 sequences in at most 4 batches", enc.Shapes())
	}
}

func TestFeaturesVariableLengthWithoutMask(t *testing.T) {
	enc := &fake.FeatureEncoder{Dims: []int64{-1}, Hidden: 2}
	s := newSched(t, Config{MaxBatchTokens: 1 << 20, MaxQueueDelay: time.Second}, enc)
	r := rand.New(rand.NewSource(2))
	var seqs []Sequence
	for i := 0; i < 9; i++ {
		seqs = append(seqs, featureSeq(r, "input_values", int64(100+50*(i%3)))) // 3 lengths
	}
	res := submitTogether(t, s, seqs)
	for i, seq := range seqs {
		want := lone(t, enc, seq)
		if !equalF32(res[i].Outputs[1].Float32s(), want[1].Float32s()) ||
			res[i].Outputs[0].Shape[0] != want[0].Shape[0] {
			t.Fatalf("sequence %d differs from a lone run: it was padded without a mask", i)
		}
	}
	batched := false
	for _, sh := range enc.Shapes() {
		batched = batched || sh[0] > 1
	}
	if !batched {
		t.Fatalf("equal lengths should share batches: %v", enc.Shapes())
	}
}

func TestFeaturesVariableLengthWithMask(t *testing.T) {
	enc := &fake.FeatureEncoder{Dims: []int64{-1}, Hidden: 2, Mask: true}
	s := newSched(t, Config{MaxBatchTokens: 1 << 20, MaxQueueDelay: time.Second}, enc)
	r := rand.New(rand.NewSource(3))
	var seqs []Sequence
	for i := 0; i < 6; i++ {
		seqs = append(seqs, featureSeq(r, "input_values", int64(80+i*7)))
	}
	res := submitTogether(t, s, seqs)
	for i, seq := range seqs {
		sameRows(t, res[i].Outputs, lone(t, enc, seq))
	}
	if sh := enc.Shapes(); len(sh) != 1 || sh[0][0] != 6 || sh[0][1] != 80+5*7 {
		t.Fatalf("batches %v: want one padded batch [6 115]", sh)
	}
}

func TestFeaturesValidation(t *testing.T) {
	enc := &fake.FeatureEncoder{Input: "input_features", Dims: []int64{4, 6}, Hidden: 2}
	s := newSched(t, Config{}, enc)
	ctx := context.Background()
	f32 := func(shape ...int64) runtime.Tensor { return runtime.Zeros[float32](shape...) }
	cases := map[string]Sequence{
		"missing":     {Features: map[string]runtime.Tensor{"other": f32(4, 6)}},
		"dtype":       {Features: map[string]runtime.Tensor{"input_features": runtime.Zeros[int64](4, 6)}},
		"fixed dim":   {Features: map[string]runtime.Tensor{"input_features": f32(4, 7)}},
		"rank":        {Features: map[string]runtime.Tensor{"input_features": f32(24)}},
		"short data":  {Features: map[string]runtime.Tensor{"input_features": {Shape: []int64{4, 6}, Data: make([]float32, 3)}}},
		"token input": {IDs: []int32{1, 2}},
	}
	for name, seq := range cases {
		if _, err := s.Submit(ctx, []Sequence{seq}); err == nil || !strings.Contains(err.Error(), "sequence 0") {
			t.Errorf("%s: err %v, want a sequence error", name, err)
		}
	}
	tok := newSched(t, Config{})
	if _, err := tok.Submit(ctx, []Sequence{{IDs: []int32{1}, Features: map[string]runtime.Tensor{"x": f32(1)}}}); err == nil {
		t.Error("features accepted by a token graph")
	}
	// A graph that mixes features with input_ids is refused at New.
	mixed := &mixedSession{}
	if _, err := New([]runtime.Session{mixed}, Config{}); err == nil {
		t.Error("a graph mixing input_ids and features was accepted")
	}
}

type mixedSession struct{ fake.FeatureEncoder }

func (m *mixedSession) Info() runtime.ModelInfo {
	return runtime.ModelInfo{Inputs: []runtime.ValueInfo{
		{Name: "input_ids", DType: runtime.Int64, Shape: []int64{-1, -1}},
		{Name: "pixel_values", DType: runtime.Float32, Shape: []int64{-1, 3}},
	}}
}
