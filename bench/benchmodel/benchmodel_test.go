package benchmodel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
)

// TestEnsureBuildsALoadableModel writes the weights and runs the graph once: the output must
// have the MiniLM shape and finite values.
func TestEnsureBuildsALoadableModel(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 90 MB")
	}
	dir, err := Ensure(testutil.Root(), filepath.Join(t.TempDir(), "model"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "onnx", "model.onnx.data"))
	if err != nil || st.Size() != 90147840 {
		t.Fatalf("weights: %v, %v", st, err)
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	sess, err := env.Open(context.Background(), filepath.Join(dir, "onnx", "model.onnx"), runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	info := sess.Info()
	in := make([]runtime.Tensor, len(info.Inputs))
	for i, v := range info.Inputs {
		data := make([]int64, 8)
		for k := range data {
			switch v.Name {
			case "input_ids":
				data[k] = int64(101 + k)
			case "attention_mask":
				data[k] = 1
			}
		}
		in[i] = runtime.NewTensor([]int64{1, 8}, data)
	}
	out := make([]runtime.Tensor, len(info.Outputs))
	if err := sess.Run(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	h := out[info.Output("last_hidden_state")]
	if len(h.Shape) != 3 || h.Shape[2] != 384 {
		t.Fatalf("hidden shape %v", h.Shape)
	}
	for _, v := range h.Float32s() {
		if v != v {
			t.Fatal("NaN in output")
		}
	}
}
