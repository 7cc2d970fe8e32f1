package sched

import (
	"fmt"

	"github.com/infergo/infergo/runtime"
)

type inputKind uint8

const (
	inputIDs inputKind = iota
	inputMask
	inputTypes
	inputPositions
)

// inputLayout maps an encoder graph's inputs to what a batch provides.
type inputLayout struct {
	kinds  []inputKind
	dtypes []runtime.DType
	// names and shapes (declared, batch axis first) of every input, for feature inputs
	// (features.go).
	names  []string
	shapes [][]int64
}

func newInputLayout(info runtime.ModelInfo) (inputLayout, error) {
	var l inputLayout
	hasIDs := false
	for _, in := range info.Inputs {
		var k inputKind
		switch in.Name {
		case "input_ids":
			k, hasIDs = inputIDs, true
		case "attention_mask":
			k = inputMask
		case "token_type_ids":
			k = inputTypes
		case "position_ids":
			k = inputPositions
		default:
			// Any other input is fed from Sequence.Features (features.go).
			k = inputFeature
		}
		if k != inputFeature && in.DType != runtime.Int64 && in.DType != runtime.Int32 {
			return l, fmt.Errorf("sched: input %q has type %s, want int64 or int32", in.Name, in.DType)
		}
		l.kinds = append(l.kinds, k)
		l.dtypes = append(l.dtypes, in.DType)
		l.names = append(l.names, in.Name)
		l.shapes = append(l.shapes, in.Shape)
	}
	if !hasIDs && !l.hasFeatures() {
		return l, fmt.Errorf("sched: graph has no input_ids input")
	}
	return l, l.checkFeatureLayout()
}

// build assembles the batch's input tensors, right-padded to the longest sequence.
func (l inputLayout) build(b *batch, padID int64) []runtime.Tensor {
	n, L := len(b.items), b.longest
	shape := []int64{int64(n), int64(L)}
	out := make([]runtime.Tensor, len(l.kinds))
	for k, kind := range l.kinds {
		if t, ok := l.buildFeatureInput(b, k); ok { // feature batches (features.go)
			out[k] = t
			continue
		}
		vals := make([]int64, n*L)
		for r, it := range b.items {
			row := vals[r*L : (r+1)*L]
			m := it.length()
			switch kind {
			case inputIDs:
				for p, id := range it.seq.IDs {
					row[p] = int64(id)
				}
				for p := m; p < L; p++ {
					row[p] = padID
				}
			case inputMask:
				for p := 0; p < m; p++ {
					row[p] = 1
				}
			case inputTypes:
				for p, t := range it.seq.TypeIDs {
					row[p] = int64(t)
				}
			case inputPositions:
				for p := range row {
					row[p] = int64(p)
				}
			}
		}
		if l.dtypes[k] == runtime.Int32 {
			v32 := make([]int32, len(vals))
			for i, v := range vals {
				v32[i] = int32(v)
			}
			out[k] = runtime.NewTensor(shape, v32)
		} else {
			out[k] = runtime.NewTensor(shape, vals)
		}
	}
	return out
}
