package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
)

// fixtureDir copies a whole fixture repo, since graph rewrites are written beside the graph.
func fixtureDir(t *testing.T, fixture string) string {
	t.Helper()
	src := testutil.Fixture(fixture)
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGraphOptionsMatchCPUPath: pooling in the graph and bucketed shapes (the GPU settings)
// give the same embeddings, similarities and token vectors as the plain CPU path (1e-5), and
// the goldens (1e-4). Token-level calls go through the lazily opened second session.
func TestGraphOptionsMatchCPUPath(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	ctx := context.Background()
	plain := loadDir(t, fixtureDir(t, "tiny-bert-embeddings"), LoadOptions{})
	dir := fixtureDir(t, "tiny-bert-embeddings")
	tuned := loadDir(t, dir, LoadOptions{Graph: GraphOptions{PoolInGraph: true, SeqBucket: 16}})

	rewritten, _ := filepath.Glob(filepath.Join(dir, "onnx", "model.infergo-pool-mean-*.onnx"))
	if len(rewritten) != 1 {
		t.Errorf("rewritten graphs: %v", rewritten)
	}
	if tuned.Info.Task != TaskFeatureExtraction || tuned.Info.Dimensions != 32 || tuned.Info.Pooling != "mean" {
		t.Errorf("info %+v", tuned.Info)
	}
	off := false
	for _, o := range []EmbedOptions{{Truncate: true}, {Truncate: true, Normalize: &off}, {Truncate: true, Dimensions: 8}} {
		want, _, err := plain.Embedder.Embed(ctx, g.Sentences, o)
		if err != nil {
			t.Fatal(err)
		}
		got, stats, err := tuned.Embedder.Embed(ctx, g.Sentences, o)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Inputs != len(g.Sentences) || stats.Tokens == 0 {
			t.Errorf("stats %+v", stats)
		}
		for i := range want {
			testutil.AssertClose(t, "pooled in graph vs host", got[i], want[i], 1e-5)
			if o.Normalize == nil && o.Dimensions == 0 {
				testutil.AssertClose(t, "pooled in graph vs sentence-transformers", got[i], g.MeanNormalized[i], 1e-4)
			}
		}
	}
	wantT, _, err := plain.Embedder.EmbedTokens(ctx, g.Sentences[:4], EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	gotT, _, err := tuned.Embedder.EmbedTokens(ctx, g.Sentences[:4], EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range wantT {
		if len(gotT[i]) != len(wantT[i]) {
			t.Fatalf("text %d: %d tokens, want %d", i, len(gotT[i]), len(wantT[i]))
		}
		for k := range wantT[i] {
			testutil.AssertClose(t, "token vectors", gotT[i][k], wantT[i][k], 1e-5)
		}
	}
	simW, _, _ := plain.Embedder.Similarity(ctx, "a man eats", []string{"a man eats food", "a car"}, EmbedOptions{})
	simG, _, err := tuned.Embedder.Similarity(ctx, "a man eats", []string{"a man eats food", "a car"}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "similarity", simG, simW, 1e-5)

	// A second load reuses the rewritten graph.
	again := loadDir(t, dir, LoadOptions{Graph: GraphOptions{PoolInGraph: true}})
	if r2, _ := filepath.Glob(filepath.Join(dir, "onnx", "model.infergo-*.onnx")); len(r2) != 1 || again.Info.Pooling != "mean" {
		t.Errorf("second load: %v %+v", r2, again.Info)
	}
}

// TestPoolInGraphSkipsPlainRepos: a repo without a pooling config is left as it is.
func TestPoolInGraphSkipsPlainRepos(t *testing.T) {
	dir := testutil.CopyFixture(t, "tiny-bert-embeddings", testutil.PlainEncoderFiles...)
	m := loadDir(t, dir, LoadOptions{Graph: GraphOptions{PoolInGraph: true}})
	if m.Info.Pooling != "" {
		t.Errorf("pooling %q", m.Info.Pooling)
	}
	if r, _ := filepath.Glob(filepath.Join(dir, "onnx", "*infergo*")); len(r) != 0 {
		t.Errorf("rewrote a plain repo: %v", r)
	}
}

// TestFloat16GraphOption: fp16 weights (CPU runs them through ONNX Runtime's float16
// fallbacks) stay within the float16 tolerance of the goldens (see onnxgraph's test).
func TestFloat16GraphOption(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	m := loadDir(t, fixtureDir(t, "tiny-bert-embeddings"), LoadOptions{Graph: GraphOptions{PoolInGraph: true, Float16: true}})
	got, _, err := m.Embedder.Embed(context.Background(), g.Sentences, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		testutil.AssertClose(t, "fp16", got[i], g.MeanNormalized[i], 5e-3)
	}
	if !strings.Contains(m.Info.Pooling, "mean") {
		t.Errorf("info %+v", m.Info)
	}
}

// TestFuseAttentionGraphOption: the fused-attention graph (ONNX Runtime's CPU
// MultiHeadAttention) matches the goldens and the plain path, with the padding passed as a
// [batch, seq] mask or as key lengths (the golden sentences differ in length, so batches pad).
func TestFuseAttentionGraphOption(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	ctx := context.Background()
	for name, mask := range map[string]onnxgraph.AttentionMask{"padding": onnxgraph.MaskPadding, "key lengths": onnxgraph.MaskKeyLengths} {
		t.Run(name, func(t *testing.T) {
			m := loadDir(t, fixtureDir(t, "tiny-bert-embeddings"), LoadOptions{Graph: GraphOptions{FuseAttention: true, AttentionMask: mask, PoolInGraph: true, SeqBucket: 16}})
			got, _, err := m.Embedder.Embed(ctx, g.Sentences, EmbedOptions{Truncate: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				testutil.AssertClose(t, "fused attention", got[i], g.MeanNormalized[i], 1e-4)
			}
			tokens, _, err := m.Embedder.EmbedTokens(ctx, g.Sentences[:1], EmbedOptions{Truncate: true})
			if err != nil || len(tokens[0]) == 0 {
				t.Errorf("token level: %v", err)
			}
		})
	}
}

// TestGraphOptionsRewriteFails: when the rewrite cannot be written beside the graph (here a
// folder is in the way of its file; read-only model folders do the same), the model still
// loads, as exported, with the same answers.
func TestGraphOptionsRewriteFails(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	probe := fixtureDir(t, "tiny-bert-embeddings")
	p, err := onnxgraph.Prepare(filepath.Join(probe, "onnx", "model.onnx"), onnxgraph.Spec{Pool: &onnxgraph.PoolSpec{Mode: models.PoolMean}})
	if err != nil {
		t.Fatal(err)
	}
	dir := fixtureDir(t, "tiny-bert-embeddings")
	if err := os.MkdirAll(filepath.Join(dir, "onnx", filepath.Base(p), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := loadDir(t, dir, LoadOptions{Graph: GraphOptions{PoolInGraph: true}})
	got, _, err := m.Embedder.Embed(context.Background(), g.Sentences[:2], EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "as exported", got[0], g.MeanNormalized[0], 1e-4)
	if m.Info.Pooling != "mean" {
		t.Errorf("info %+v", m.Info)
	}
}
