package fake

import (
	"context"
	"fmt"
	"sync"

	"github.com/infergo/infergo/runtime"
)

// FeatureEncoder is a fake encoder over a dense float32 input — Whisper's input_features
// ([batch, mels, frames], fixed) or wav2vec2's input_values ([batch, samples], variable) —
// with an optional attention_mask. For each row it returns
//
//	pooled [batch, Hidden]:              pooled[k] = (k+1)·Σx + mean(x)
//	last_hidden_state [batch, T, Hidden]: hidden[t][k] = (k+1)·Σ x[t,…] + mean(x)
//
// where T is the input's second axis and mean(x) is taken over the row's real values: all of
// them without a mask, the masked-in prefix with one. Padding a row without a mask therefore
// changes its outputs, which is what the scheduler must never do.
type FeatureEncoder struct {
	// Input names the feature input ("input_values" when empty).
	Input string
	// Dims are the input's dimensions after the batch axis; -1 marks a variable one.
	Dims   []int64
	Hidden int
	// Mask adds an attention_mask input over the first axis after the batch.
	Mask bool

	mu     sync.Mutex
	shapes [][]int64
}

var _ runtime.Session = (*FeatureEncoder)(nil)

func (e *FeatureEncoder) input() string {
	if e.Input == "" {
		return "input_values"
	}
	return e.Input
}

// Info implements runtime.Session.
func (e *FeatureEncoder) Info() runtime.ModelInfo {
	in := []runtime.ValueInfo{{Name: e.input(), DType: runtime.Float32, Shape: append([]int64{-1}, e.Dims...)}}
	if e.Mask {
		in = append(in, runtime.ValueInfo{Name: "attention_mask", DType: runtime.Int64, Shape: []int64{-1, -1}})
	}
	h := int64(e.Hidden)
	return runtime.ModelInfo{
		Inputs: in,
		Outputs: []runtime.ValueInfo{
			{Name: "last_hidden_state", DType: runtime.Float32, Shape: []int64{-1, -1, h}},
			{Name: "pooled", DType: runtime.Float32, Shape: []int64{-1, h}},
		},
	}
}

// Run implements runtime.Session.
func (e *FeatureEncoder) Run(ctx context.Context, in []runtime.Tensor, out []runtime.Tensor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	want := 1
	if e.Mask {
		want = 2
	}
	if len(in) != want || len(out) != 2 {
		return fmt.Errorf("fake: want %d inputs and 2 outputs, got %d and %d", want, len(in), len(out))
	}
	x := in[0].Float32s()
	shape := in[0].Shape
	if x == nil || len(shape) != len(e.Dims)+1 {
		return fmt.Errorf("fake: input %v", in[0])
	}
	e.mu.Lock()
	e.shapes = append(e.shapes, append([]int64(nil), shape...))
	e.mu.Unlock()
	b := shape[0]
	rowLen := runtime.Elements(shape[1:])
	T := int64(1)
	if len(shape) > 1 {
		T = shape[1]
	}
	per := rowLen / T // values per step of the first axis
	h := int64(e.Hidden)
	hidden := make([]float32, b*T*h)
	pooled := make([]float32, b*h)
	for r := int64(0); r < b; r++ {
		row := x[r*rowLen : (r+1)*rowLen]
		real := T
		if e.Mask {
			mask := in[1].Int64s()
			real = 0
			for t := int64(0); t < T; t++ {
				real += mask[r*T+t]
			}
		}
		var sum float64
		for _, v := range row[:real*per] {
			sum += float64(v)
		}
		mean := float32(sum / float64(real*per))
		for t := int64(0); t < T; t++ {
			var s float32
			for _, v := range row[t*per : (t+1)*per] {
				s += v
			}
			for k := int64(0); k < h; k++ {
				hidden[(r*T+t)*h+k] = float32(k+1)*s + mean
			}
		}
		for k := int64(0); k < h; k++ {
			pooled[r*h+k] = float32(k+1)*float32(sum) + mean
		}
	}
	out[0] = runtime.NewTensor([]int64{b, T, h}, hidden)
	out[1] = runtime.NewTensor([]int64{b, h}, pooled)
	return nil
}

// Close implements runtime.Session.
func (e *FeatureEncoder) Close() error { return nil }

// Shapes returns the input shape of every Run so far.
func (e *FeatureEncoder) Shapes() [][]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]int64(nil), e.shapes...)
}
