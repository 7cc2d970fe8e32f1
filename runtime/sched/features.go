package sched

import (
	"errors"
	"fmt"
	"slices"

	"github.com/infergo/infergo/runtime"
)

// Feature inputs: encoders that take dense tensors instead of token ids — Whisper's
// input_features [batch, mels, 3000], wav2vec2's input_values [batch, samples], image
// pixel_values. A Sequence carries them in Features, one tensor per graph input, without
// the batch dimension; a batch stacks them along a new first axis.
//
// Batching rule: sequences share a batch only when every feature has the same shape, because
// padding changes what such encoders compute (wav2vec2's group norm and convolutions see the
// padding) unless the graph says where the padding is. So when the graph also has an
// attention_mask input, rank-1 features of different lengths are right-padded with zeros to
// the longest and the mask marks the real samples (the layout Wav2Vec2FeatureExtractor
// produces with return_attention_mask). A feature sequence costs its element count against
// MaxBatchTokens (padded: longest × sequences), so a pipeline sets MaxBatchTokens in elements
// for such a model. Outputs are returned whole per row: the scheduler cannot know how an
// encoder's output length relates to padded input, so the pipeline trims what it must.

// inputFeature is the inputKind of a graph input fed from Sequence.Features.
const inputFeature inputKind = 255

// featureLength is a feature sequence's cost: the elements of all its features.
func featureLength(seq *Sequence) int {
	n := 0
	for _, t := range seq.Features {
		n += t.Len()
	}
	return n
}

// hasFeatures reports whether the graph takes feature inputs.
func (l inputLayout) hasFeatures() bool { return slices.Contains(l.kinds, inputFeature) }

// hasMask reports whether the graph has an attention_mask input.
func (l inputLayout) hasMask() bool { return slices.Contains(l.kinds, inputMask) }

// checkFeatureLayout rejects graphs that mix feature inputs with token inputs other than
// attention_mask: nothing would know how to fill them.
func (l inputLayout) checkFeatureLayout() error {
	if !l.hasFeatures() {
		return nil
	}
	for i, k := range l.kinds {
		if k == inputIDs || k == inputTypes || k == inputPositions {
			return fmt.Errorf("sched: graph mixes feature inputs with token input #%d; only attention_mask may accompany features", i)
		}
	}
	return nil
}

// checkSequence validates a submitted sequence against the graph: a token graph needs ids, a
// feature graph one tensor of the declared type and rank per feature input, with every
// fixed dimension matching.
func (l inputLayout) checkSequence(seq *Sequence) error {
	if !l.hasFeatures() {
		if seq.Features != nil {
			return errors.New("the graph takes no feature inputs")
		}
		return nil
	}
	want := 0
	for k, kind := range l.kinds {
		if kind != inputFeature {
			continue
		}
		want++
		name := l.names[k]
		t, ok := seq.Features[name]
		if !ok {
			return fmt.Errorf("feature %q missing", name)
		}
		if t.DType() != l.dtypes[k] {
			return fmt.Errorf("feature %q is %s, the graph wants %s", name, t.DType(), l.dtypes[k])
		}
		decl := l.shapes[k]
		if len(t.Shape) != len(decl)-1 {
			return fmt.Errorf("feature %q has shape %v; the graph wants %v with the batch axis first", name, t.Shape, decl)
		}
		for i, d := range t.Shape {
			if d <= 0 || (decl[i+1] > 0 && d != decl[i+1]) {
				return fmt.Errorf("feature %q has shape %v; the graph wants %v with the batch axis first", name, t.Shape, decl)
			}
		}
		if t.Len() == 0 || dataLen(t) != t.Len() {
			return fmt.Errorf("feature %q holds %d values for shape %v", name, dataLen(t), t.Shape)
		}
	}
	if len(seq.Features) != want {
		return fmt.Errorf("%d features given, the graph takes %d", len(seq.Features), want)
	}
	return nil
}

// compatible reports whether a and b may share a batch (see the rule above).
func (l inputLayout) compatible(a, b *Sequence) bool {
	if a.Features == nil || b.Features == nil {
		return a.Features == nil && b.Features == nil
	}
	for name, ta := range a.Features {
		tb := b.Features[name]
		if slices.Equal(ta.Shape, tb.Shape) {
			continue
		}
		if !l.hasMask() || len(ta.Shape) != 1 || len(tb.Shape) != 1 {
			return false
		}
	}
	return true
}

// isFeatureBatch reports whether b holds feature sequences.
func (b *batch) isFeatureBatch() bool { return len(b.items) > 0 && b.items[0].seq.Features != nil }

// rowSpan returns the longest and own lengths rowsOf cuts token-level outputs to; feature
// rows are never cut (-1).
func (b *batch) rowSpan(it *item) (longest, length int) {
	if b.isFeatureBatch() {
		return -1, -1
	}
	return b.longest, it.length()
}

// buildFeatureInput fills input k of a feature batch: the stacked feature, or the attention
// mask over the first feature's (padded) first axis. ok is false for inputs of token batches.
func (l inputLayout) buildFeatureInput(b *batch, k int) (t runtime.Tensor, ok bool) {
	if !b.isFeatureBatch() {
		return runtime.Tensor{}, false
	}
	switch l.kinds[k] {
	case inputFeature:
		return stackFeature(b, l.names[k]), true
	case inputMask:
		first := ""
		for i, kind := range l.kinds {
			if kind == inputFeature {
				first = l.names[i]
				break
			}
		}
		n, L := len(b.items), int64(0)
		for _, it := range b.items {
			L = max(L, it.seq.Features[first].Shape[0])
		}
		vals := make([]int64, int64(n)*L)
		for r, it := range b.items {
			m := it.seq.Features[first].Shape[0]
			for p := int64(0); p < m; p++ {
				vals[int64(r)*L+p] = 1
			}
		}
		shape := []int64{int64(n), L}
		if l.dtypes[k] == runtime.Int32 {
			v32 := make([]int32, len(vals))
			for i, v := range vals {
				v32[i] = int32(v)
			}
			return runtime.NewTensor(shape, v32), true
		}
		return runtime.NewTensor(shape, vals), true
	}
	return runtime.Tensor{}, false
}

// stackFeature concatenates the sequences' tensors for one input along a new batch axis,
// right-padding rank-1 tensors with zeros to the longest (compatible allowed that only with
// an attention mask).
func stackFeature(b *batch, name string) runtime.Tensor {
	first := b.items[0].seq.Features[name]
	shape := append([]int64{int64(len(b.items))}, first.Shape...)
	for _, it := range b.items {
		shape[1] = max(shape[1], it.seq.Features[name].Shape[0])
	}
	row := runtime.Elements(shape[1:])
	switch first.Data.(type) {
	case []float32:
		return stack[float32](b, name, shape, row)
	case []uint16:
		return stack[uint16](b, name, shape, row)
	case []float64:
		return stack[float64](b, name, shape, row)
	case []int64:
		return stack[int64](b, name, shape, row)
	case []int32:
		return stack[int32](b, name, shape, row)
	case []bool:
		return stack[bool](b, name, shape, row)
	case []uint8:
		return stack[uint8](b, name, shape, row)
	default:
		return stack[int8](b, name, shape, row)
	}
}

func stack[T runtime.Element](b *batch, name string, shape []int64, row int64) runtime.Tensor {
	if len(b.items) == 1 {
		// A batch of one needs no copy: the sequence's tensor, with a batch axis of 1.
		return runtime.Tensor{Shape: shape, Data: b.items[0].seq.Features[name].Data}
	}
	out := make([]T, int64(len(b.items))*row)
	for r, it := range b.items {
		copy(out[int64(r)*row:], it.seq.Features[name].Data.([]T))
	}
	return runtime.NewTensor(shape, out)
}

// dataLen is the length of a tensor's data slice (-1 for an unknown type).
func dataLen(t runtime.Tensor) int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []uint16:
		return len(d)
	case []float64:
		return len(d)
	case []int64:
		return len(d)
	case []int32:
		return len(d)
	case []bool:
		return len(d)
	case []uint8:
		return len(d)
	case []int8:
		return len(d)
	}
	return -1
}
