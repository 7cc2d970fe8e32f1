package onnxgraph_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
)

// TestFuseAttention: both layers of the tiny BERT (torch 2.11 export) and all six of the
// MiniLM-shaped benchmark graph match; the fused tiny model computes the same hidden states
// as the original on the padded golden batch (ONNX Runtime's CPU MultiHeadAttention kernel),
// and the sentence-transformers means within 1e-4.
func TestFuseAttention(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	for fixture, want := range map[string]int{"tiny-bert-embeddings": 2, "bench-minilm-l6-graph": 6} {
		m, err := onnxgraph.Read(testutil.Fixture(fixture, "onnx", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		before := len(m.Graph().GetNode())
		n, err := m.FuseAttention()
		if err != nil || n != want {
			t.Fatalf("%s: fused %d, %v; want %d", fixture, n, err, want)
		}
		t.Logf("%s: %d blocks fused, %d → %d nodes", fixture, n, before, len(m.Graph().GetNode()))
	}

	src := fixtureCopy(t)
	plain := run(t, src, g, "last_hidden_state")[0]
	path, err := onnxgraph.Prepare(src, onnxgraph.Spec{FuseAttention: true, Pool: &onnxgraph.PoolSpec{Mode: models.PoolMean}})
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, path, g, "last_hidden_state", onnxgraph.PooledOutput)
	// Padded positions differ (the export lets padded queries attend; either way they are
	// masked out downstream): compare real tokens only.
	s, h := int(plain.Shape[1]), int(plain.Shape[2])
	for i, mask := range g.AttentionMask {
		for p, on := range mask {
			if on == 1 {
				lo := (i*s + p) * h
				testutil.AssertClose(t, "hidden state", out[0].Float32s()[lo:lo+h], plain.Float32s()[lo:lo+h], 1e-4)
			}
		}
		testutil.AssertClose(t, "mean", out[1].Float32s()[i*h:(i+1)*h], g.MeanPooled[i], 1e-4)
	}
}

// TestFuseGelu: every layer's exported GELU becomes one node, with the same outputs on CPU.
func TestFuseGelu(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	for fixture, want := range map[string]int{"tiny-bert-embeddings": 2, "bench-minilm-l6-graph": 6} {
		m, err := onnxgraph.Read(testutil.Fixture(fixture, "onnx", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := m.FuseGelu(); err != nil || n != want {
			t.Fatalf("%s: fused %d, %v; want %d", fixture, n, err, want)
		}
		for _, n := range m.Graph().GetNode() {
			if n.GetOpType() == "Erf" {
				t.Errorf("%s: Erf %s left", fixture, n.GetName())
			}
		}
	}
	src := fixtureCopy(t)
	m, err := onnxgraph.Read(src)
	if err != nil {
		t.Fatal(err)
	}
	m.FuseGelu()
	b, _ := m.Marshal()
	fused := filepath.Join(filepath.Dir(src), "gelu.onnx")
	if err := os.WriteFile(fused, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := run(t, src, g, "last_hidden_state")[0]
	got := run(t, fused, g, "last_hidden_state")[0]
	testutil.AssertClose(t, "hidden states", got.Float32s(), want.Float32s(), 1e-5)
}
