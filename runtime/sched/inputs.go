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

// inputScratch holds one worker's input buffers, reused from batch to batch: a Run returns
// only after the engine has let go of its inputs, so the next batch may overwrite them.
type inputScratch struct {
	i64 [][]int64
	i32 [][]int32
	out []runtime.Tensor
}

// build assembles the batch's input tensors, right-padded to the longest sequence, in sc's
// buffers. The tensors are valid until the next build with the same scratch.
func (l inputLayout) build(b *batch, padID int64, sc *inputScratch) []runtime.Tensor {
	n, L := len(b.items), b.longest
	size := n * L
	if len(sc.i64) < len(l.kinds) {
		sc.i64 = make([][]int64, len(l.kinds))
		sc.i32 = make([][]int32, len(l.kinds))
		sc.out = make([]runtime.Tensor, len(l.kinds))
	}
	shape := []int64{int64(n), int64(L)}
	for k, kind := range l.kinds {
		if t, ok := l.buildFeatureInput(b, k); ok { // feature batches (features.go)
			sc.out[k] = t
			continue
		}
		if cap(sc.i64[k]) < size {
			sc.i64[k] = make([]int64, size, size+size/4)
		}
		vals := sc.i64[k][:size]
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
				for p := range row {
					row[p] = 0
				}
				for p := 0; p < m; p++ {
					row[p] = 1
				}
			case inputTypes:
				for p := range row {
					row[p] = 0
				}
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
			if cap(sc.i32[k]) < size {
				sc.i32[k] = make([]int32, size, size+size/4)
			}
			v32 := sc.i32[k][:size]
			for i, v := range vals {
				v32[i] = int32(v)
			}
			sc.out[k] = runtime.NewTensor(shape, v32)
		} else {
			sc.out[k] = runtime.NewTensor(shape, vals)
		}
	}
	return sc.out[:len(l.kinds)]
}
