// Package bucket wraps an encoder session so every batch's sequence length is padded up to a
// multiple of a bucket size, and float32 outputs whose shapes are known are preallocated. On a
// GPU each new input shape costs kernel selection and arena growth; with buckets a server sees
// a handful of shapes instead of one per length. Padding is invisible to callers: padded
// positions are masked out (attention_mask 0), and token-level outputs are cut back to the
// batch's own length.
package bucket

import (
	"context"
	"fmt"

	"github.com/infergo/infergo/runtime"
)

// Config tunes Wrap.
type Config struct {
	// Multiple is the bucket size: lengths are rounded up to a multiple of it (≤ 1: off).
	Multiple int
	// MaxLength caps the padded length (0: no cap), e.g. the model's position limit.
	MaxLength int
	// PadID fills padded input_ids.
	PadID int64
}

type kind uint8

const (
	kindIDs kind = iota
	kindZero
	kindPositions
)

// Session is a runtime.Session that pads to buckets.
type Session struct {
	inner runtime.Session
	cfg   Config
	kinds []kind
}

var _ runtime.Session = (*Session)(nil)

// Wrap returns s padded to buckets. Inputs must be [batch, seq] integer tensors named
// input_ids, attention_mask, token_type_ids or position_ids.
func Wrap(s runtime.Session, c Config) (*Session, error) {
	b := &Session{inner: s, cfg: c}
	for _, in := range s.Info().Inputs {
		switch in.Name {
		case "input_ids":
			b.kinds = append(b.kinds, kindIDs)
		case "attention_mask", "token_type_ids":
			b.kinds = append(b.kinds, kindZero)
		case "position_ids":
			b.kinds = append(b.kinds, kindPositions)
		default:
			return nil, fmt.Errorf("bucket: input %q cannot be padded", in.Name)
		}
	}
	return b, nil
}

// Info implements runtime.Session.
func (b *Session) Info() runtime.ModelInfo { return b.inner.Info() }

// Close implements runtime.Session.
func (b *Session) Close() error { return b.inner.Close() }

// Padded returns the bucketed length of a batch whose longest sequence has n tokens.
func (b *Session) Padded(n int) int {
	m := b.cfg.Multiple
	if m <= 1 {
		return n
	}
	p := (n + m - 1) / m * m
	if b.cfg.MaxLength > 0 && p > b.cfg.MaxLength {
		p = max(n, b.cfg.MaxLength)
	}
	return p
}

// Run implements runtime.Session.
func (b *Session) Run(ctx context.Context, inputs []runtime.Tensor, outputs []runtime.Tensor) error {
	if len(inputs) != len(b.kinds) || len(inputs) == 0 {
		return fmt.Errorf("bucket: got %d inputs, want %d", len(inputs), len(b.kinds))
	}
	sh := inputs[0].Shape
	if len(sh) != 2 {
		return fmt.Errorf("bucket: input shape %v, want [batch, seq]", sh)
	}
	n, L := int(sh[0]), int(sh[1])
	P := b.Padded(L)
	padded := inputs
	if P != L {
		padded = make([]runtime.Tensor, len(inputs))
		for i, t := range inputs {
			var err error
			if padded[i], err = pad(t, b.kinds[i], n, L, P, b.cfg.PadID); err != nil {
				return fmt.Errorf("bucket: input %q: %w", b.inner.Info().Inputs[i].Name, err)
			}
		}
	}
	// Preallocate float32 outputs of known shape, so ONNX Runtime writes straight into Go
	// memory instead of allocating its own buffer to be copied.
	infos := b.inner.Info().Outputs
	inner := make([]runtime.Tensor, len(outputs))
	for i := range outputs {
		if outputs[i].Data != nil && P == L {
			inner[i] = outputs[i]
			continue
		}
		if shape, ok := knownShape(infos[i], n, P); ok {
			inner[i] = runtime.Zeros[float32](shape...)
		}
	}
	if err := b.inner.Run(ctx, padded, inner); err != nil {
		return err
	}
	for i, t := range inner {
		if P != L && len(t.Shape) >= 3 && t.Shape[1] == int64(P) {
			var err error
			if t, err = cut(t, L); err != nil {
				return fmt.Errorf("bucket: output %q: %w", infos[i].Name, err)
			}
		}
		if outputs[i].Data != nil {
			if err := copyInto(outputs[i], t); err != nil {
				return fmt.Errorf("bucket: output %q: %w", infos[i].Name, err)
			}
			continue
		}
		outputs[i] = t
	}
	return nil
}

// knownShape gives a float32 output's shape for a batch of n sequences of p tokens when the
// declared shape leaves only batch (and, at rank 3, sequence) dynamic.
func knownShape(v runtime.ValueInfo, n, p int) ([]int64, bool) {
	if v.DType != runtime.Float32 {
		return nil, false
	}
	switch len(v.Shape) {
	case 2:
		if v.Shape[1] > 0 {
			return []int64{int64(n), v.Shape[1]}, true
		}
	case 3:
		if v.Shape[2] > 0 {
			return []int64{int64(n), int64(p), v.Shape[2]}, true
		}
	}
	return nil, false
}

func pad(t runtime.Tensor, k kind, n, L, P int, padID int64) (runtime.Tensor, error) {
	shape := []int64{int64(n), int64(P)}
	switch d := t.Data.(type) {
	case []int64:
		return runtime.NewTensor(shape, padRows(d, k, n, L, P, padID)), nil
	case []int32:
		return runtime.NewTensor(shape, padRows(d, k, n, L, P, int32(padID))), nil
	}
	return runtime.Tensor{}, fmt.Errorf("%s tensors cannot be padded", t.DType())
}

func padRows[T int64 | int32](d []T, k kind, n, L, P int, padID T) []T {
	out := make([]T, n*P)
	for r := 0; r < n; r++ {
		row := out[r*P : (r+1)*P]
		copy(row, d[r*L:(r+1)*L])
		for p := L; p < P; p++ {
			switch k {
			case kindIDs:
				row[p] = padID
			case kindPositions:
				row[p] = T(p)
			}
		}
	}
	return out
}

// cut keeps the first L positions of a [n, P, ...] tensor.
func cut(t runtime.Tensor, L int) (runtime.Tensor, error) {
	n, P := int(t.Shape[0]), int(t.Shape[1])
	inner := int(runtime.Elements(t.Shape[2:]))
	shape := append([]int64{int64(n), int64(L)}, t.Shape[2:]...)
	switch d := t.Data.(type) {
	case []float32:
		return runtime.NewTensor(shape, cutRows(d, n, P, L, inner)), nil
	case []uint16:
		return runtime.NewTensor(shape, cutRows(d, n, P, L, inner)), nil
	case []int64:
		return runtime.NewTensor(shape, cutRows(d, n, P, L, inner)), nil
	}
	return runtime.Tensor{}, fmt.Errorf("%s outputs cannot be cut", t.DType())
}

func cutRows[T any](d []T, n, P, L, inner int) []T {
	out := make([]T, n*L*inner)
	for r := 0; r < n; r++ {
		copy(out[r*L*inner:(r+1)*L*inner], d[r*P*inner:(r*P+L)*inner])
	}
	return out
}

func copyInto(dst, src runtime.Tensor) error {
	if runtime.Elements(dst.Shape) != runtime.Elements(src.Shape) {
		return fmt.Errorf("preallocated %v, result %v", dst.Shape, src.Shape)
	}
	switch d := dst.Data.(type) {
	case []float32:
		if s, ok := src.Data.([]float32); ok {
			copy(d, s)
			return nil
		}
	case []int64:
		if s, ok := src.Data.([]int64); ok {
			copy(d, s)
			return nil
		}
	}
	return fmt.Errorf("cannot copy %s into %s", src.DType(), dst.DType())
}
