package onnxgraph_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
)

type golden struct {
	InputIDs       [][]int64   `json:"input_ids"`
	AttentionMask  [][]int64   `json:"attention_mask"`
	MeanPooled     [][]float64 `json:"mean_pooled"`
	MeanNormalized [][]float64 `json:"mean_pooled_normalized"`
	CLSPooled      [][]float64 `json:"cls_pooled"`
}

// fixtureCopy copies the tiny embedding model's graph and external data into a fresh folder
// (rewrites are written beside the graph).
func fixtureCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"model.onnx", "model.onnx_data"} {
		b, err := os.ReadFile(testutil.Fixture("tiny-bert-embeddings", "onnx", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "model.onnx")
}

// run runs the golden batch (10 sentences padded to 128) through the graph at path and
// returns the requested outputs.
func run(t *testing.T, path string, g golden, outputs ...string) []runtime.Tensor {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	sess, err := env.Open(context.Background(), path, runtime.Options{IntraOpThreads: 1, Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	n, s := int64(len(g.InputIDs)), int64(len(g.InputIDs[0]))
	var ids, mask []int64
	for i := range g.InputIDs {
		ids = append(ids, g.InputIDs[i]...)
		mask = append(mask, g.AttentionMask[i]...)
	}
	in := []runtime.Tensor{runtime.NewTensor([]int64{n, s}, ids), runtime.NewTensor([]int64{n, s}, mask), runtime.Zeros[int64](n, s)}
	out := make([]runtime.Tensor, len(outputs))
	if err := sess.Run(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// hostPool pools row i of a [n, s, h] tensor over its unmasked tokens, in float64.
func hostPool(mode models.Pooling, hs runtime.Tensor, mask []int64, i int) []float64 {
	s, h := int(hs.Shape[1]), int(hs.Shape[2])
	data := hs.Float32s()[i*s*h : (i+1)*s*h]
	n := 0
	for _, m := range mask {
		n += int(m)
	}
	out := make([]float64, h)
	switch mode {
	case models.PoolCLS:
		for k := range out {
			out[k] = float64(data[k])
		}
	case models.PoolLastToken:
		for k := range out {
			out[k] = float64(data[(n-1)*h+k])
		}
	case models.PoolMax:
		for k := range out {
			out[k] = math.Inf(-1)
			for p := 0; p < n; p++ {
				out[k] = math.Max(out[k], float64(data[p*h+k]))
			}
		}
	default:
		div := float64(n)
		if mode == models.PoolMeanSqrt {
			div = math.Sqrt(div)
		}
		for k := range out {
			for p := 0; p < n; p++ {
				out[k] += float64(data[p*h+k])
			}
			out[k] /= div
		}
	}
	return out
}

// TestAppendPoolingMatchesReference: every pooling mode appended to the graph gives what the
// host computes from last_hidden_state (1e-5) and, for mean/CLS/normalised mean, what
// sentence-transformers computed (the goldens, 1e-4).
func TestAppendPoolingMatchesReference(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	src := fixtureCopy(t)
	modes := []models.Pooling{models.PoolMean, models.PoolCLS, models.PoolMax, models.PoolMeanSqrt, models.PoolLastToken}
	for _, mode := range modes {
		for _, norm := range []bool{false, true} {
			path, err := onnxgraph.Prepare(src, onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: mode, Normalize: norm}})
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			out := run(t, path, g, "last_hidden_state", onnxgraph.PooledOutput)
			hs, pooled := out[0], out[1]
			if len(pooled.Shape) != 2 || pooled.Shape[0] != int64(len(g.InputIDs)) || pooled.Shape[1] != 32 {
				t.Fatalf("%s: pooled shape %v", mode, pooled.Shape)
			}
			for i := range g.InputIDs {
				got := pooled.Float32s()[i*32 : (i+1)*32]
				want := hostPool(mode, hs, g.AttentionMask[i], i)
				if norm {
					var ss float64
					for _, v := range want {
						ss += v * v
					}
					for k := range want {
						want[k] /= math.Max(math.Sqrt(ss), 1e-12)
					}
				}
				testutil.AssertClose(t, string(mode)+" vs host", got, want, 1e-5)
				switch {
				case mode == models.PoolMean && !norm:
					testutil.AssertClose(t, "mean vs sentence-transformers", got, g.MeanPooled[i], 1e-4)
				case mode == models.PoolMean && norm:
					testutil.AssertClose(t, "normalised mean vs sentence-transformers", got, g.MeanNormalized[i], 1e-4)
				case mode == models.PoolCLS && !norm:
					testutil.AssertClose(t, "cls vs sentence-transformers", got, g.CLSPooled[i], 1e-4)
				}
			}
		}
	}
}

// TestPrepareReusesAndKeepsExternalData: the rewrite sits beside the source (sharing its
// external data file), is written once, and the source file is untouched.
func TestPrepareReusesAndKeepsExternalData(t *testing.T) {
	src := fixtureCopy(t)
	before, _ := os.ReadFile(src)
	spec := onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: models.PoolMean}}
	p1, err := onnxgraph.Prepare(src, spec)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p1) != filepath.Dir(src) || !strings.Contains(filepath.Base(p1), "model.infergo-pool-mean-") {
		t.Errorf("rewrite at %s", p1)
	}
	st1, _ := os.Stat(p1)
	p2, err := onnxgraph.Prepare(src, spec)
	st2, _ := os.Stat(p2)
	if err != nil || p2 != p1 || !st2.ModTime().Equal(st1.ModTime()) {
		t.Errorf("second Prepare: %s %v (rewritten: %v)", p2, err, !st2.ModTime().Equal(st1.ModTime()))
	}
	after, _ := os.ReadFile(src)
	if string(before) != string(after) {
		t.Error("source graph changed")
	}
	m, err := onnxgraph.Read(p1)
	if err != nil {
		t.Fatal(err)
	}
	external := 0
	for _, init := range m.Graph().GetInitializer() {
		for _, e := range init.GetExternalData() {
			if e.GetKey() == "location" {
				external++
				if e.GetValue() != "model.onnx_data" {
					t.Errorf("external location %q", e.GetValue())
				}
			}
		}
	}
	if external == 0 {
		t.Error("the rewrite inlined or lost the external data references")
	}
	if p, err := onnxgraph.Prepare(src, onnxgraph.Spec{}); err != nil || p != src {
		t.Errorf("empty spec: %s %v", p, err)
	}
	ranks, err := onnxgraph.OutputRanks(p1)
	if err != nil || ranks["last_hidden_state"] != 3 || ranks[onnxgraph.PooledOutput] != 2 {
		t.Errorf("ranks %v %v", ranks, err)
	}
}

func TestPrepareErrors(t *testing.T) {
	src := fixtureCopy(t)
	if _, err := onnxgraph.Prepare(src, onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: "weighted"}}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := onnxgraph.Prepare(src, onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: models.PoolMean, TokenOutput: "logits"}}); err == nil || !strings.Contains(err.Error(), "logits") {
		t.Errorf("missing output: %v", err)
	}
	if os.Getuid() != 0 { // root writes anywhere
		dir := filepath.Dir(src)
		os.Chmod(dir, 0o555)
		defer os.Chmod(dir, 0o755)
		if _, err := onnxgraph.Prepare(src, onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: models.PoolCLS}}); err == nil || !strings.Contains(err.Error(), "must stay next to it") {
			t.Errorf("read-only folder: %v", err)
		}
	}
	if _, err := onnxgraph.Prepare(filepath.Join(t.TempDir(), "none.onnx"), onnxgraph.Spec{Float16: true}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestFloat16Bits(t *testing.T) {
	for f, want := range map[float32]uint16{
		0: 0, 1: 0x3c00, -2: 0xc000, 65504: 0x7bff, 1e9: 0x7bff, -3.4028235e38: 0xfbff,
		0.1: 0x2e66, 5.9604645e-8: 0x0001, 1e-9: 0, float32(math.Inf(-1)): 0xfc00, 6.1035156e-5: 0x0400,
		1.0009765625: 0x3c01, 1.00048828125: 0x3c00, // ties round to even
	} {
		if got := onnxgraph.Float16Bits(f); got != want {
			t.Errorf("Float16Bits(%g) = %#04x, want %#04x", f, got, want)
		}
	}
	for _, f := range []float32{0.5, -1.75, 1024, 3.140625, 6.1035156e-5, 5.9604645e-8} {
		if got := onnxgraph.Float16Value(onnxgraph.Float16Bits(f)); got != f {
			t.Errorf("round trip %g → %g", f, got)
		}
	}
	if v := onnxgraph.Float16Value(onnxgraph.Float16Bits(float32(math.NaN()))); !math.IsNaN(float64(v)) {
		t.Errorf("NaN → %g", v)
	}
}
