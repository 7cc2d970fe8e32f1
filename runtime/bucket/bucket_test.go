package bucket

import (
	"context"
	"reflect"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/fake"
	"github.com/infergo/infergo/runtime/ort"
)

func batch(rows [][]int64) []runtime.Tensor {
	n, L := int64(len(rows)), int64(0)
	for _, r := range rows {
		L = max(L, int64(len(r)))
	}
	ids, mask := make([]int64, n*L), make([]int64, n*L)
	for i, r := range rows {
		for p, id := range r {
			ids[int64(i)*L+int64(p)] = id
			mask[int64(i)*L+int64(p)] = 1
		}
	}
	return []runtime.Tensor{runtime.NewTensor([]int64{n, L}, ids), runtime.NewTensor([]int64{n, L}, mask), runtime.Zeros[int64](n, L)}
}

func TestPaddedLengths(t *testing.T) {
	b, _ := Wrap(&fake.Encoder{Hidden: 2}, Config{Multiple: 16, MaxLength: 40})
	for in, want := range map[int]int{1: 16, 16: 16, 17: 32, 33: 40, 40: 40, 45: 45} {
		if got := b.Padded(in); got != want {
			t.Errorf("Padded(%d) = %d, want %d", in, got, want)
		}
	}
	off, _ := Wrap(&fake.Encoder{Hidden: 2}, Config{})
	if off.Padded(7) != 7 {
		t.Error("Multiple 0 pads")
	}
}

// TestWrapIsInvisible: the fake encoder sees bucketed shapes, and callers get exactly the
// outputs of the unpadded run.
func TestWrapIsInvisible(t *testing.T) {
	enc := &fake.Encoder{Hidden: 3}
	b, err := Wrap(enc, Config{Multiple: 8, PadID: 0})
	if err != nil {
		t.Fatal(err)
	}
	in := batch([][]int64{{2, 5, 9}, {2, 7}})
	got := make([]runtime.Tensor, 2)
	if err := b.Run(context.Background(), in, got); err != nil {
		t.Fatal(err)
	}
	want := make([]runtime.Tensor, 2)
	if err := (&fake.Encoder{Hidden: 3}).Run(context.Background(), in, want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bucketed %v\nplain    %v", got, want)
	}
	if s := enc.Shapes(); len(s) != 1 || s[0] != [2]int64{2, 8} {
		t.Errorf("inner shapes %v", s)
	}
	// A caller's preallocated output is filled in place.
	pre := []runtime.Tensor{runtime.Zeros[float32](2, 3, 3), runtime.Zeros[float32](2, 3)}
	if err := b.Run(context.Background(), in, pre); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pre[1].Float32s(), want[1].Float32s()) || !reflect.DeepEqual(pre[0].Float32s(), want[0].Float32s()) {
		t.Errorf("preallocated %v, want %v", pre, want)
	}
}

func TestWrapRejectsUnknownInputs(t *testing.T) {
	if _, err := Wrap(stub{runtime.ModelInfo{Inputs: []runtime.ValueInfo{{Name: "pixel_values"}}}}, Config{Multiple: 8}); err == nil {
		t.Error("pixel_values accepted")
	}
}

type stub struct{ info runtime.ModelInfo }

func (s stub) Info() runtime.ModelInfo                                       { return s.info }
func (s stub) Run(context.Context, []runtime.Tensor, []runtime.Tensor) error { return nil }
func (s stub) Close() error                                                  { return nil }

// TestBucketedOnnxRuntime: on the real tiny BERT, padding to a bucket (masked) leaves every
// real token's hidden state unchanged (1e-5), and preallocated outputs are used.
func TestBucketedOnnxRuntime(t *testing.T) {
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	sess, err := env.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	b, err := Wrap(sess, Config{Multiple: 16})
	if err != nil {
		t.Fatal(err)
	}
	in := batch([][]int64{{2, 50, 438, 235, 3}, {2, 11, 12, 13, 14, 15, 16, 3}})
	got, want := make([]runtime.Tensor, 1), make([]runtime.Tensor, 1)
	if err := b.Run(context.Background(), in, got); err != nil {
		t.Fatal(err)
	}
	if err := sess.Run(context.Background(), in, want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0].Shape, want[0].Shape) {
		t.Fatalf("shape %v, want %v", got[0].Shape, want[0].Shape)
	}
	for r := 0; r < 2; r++ {
		n := []int{5, 8}[r]
		lo, hi := r*8*32, (r*8+n)*32
		testutil.AssertClose(t, "hidden states", got[0].Float32s()[lo:hi], want[0].Float32s()[lo:hi], 1e-5)
	}
}
