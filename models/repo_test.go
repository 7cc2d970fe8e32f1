package models

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
)

func TestOpenDirAndFiles(t *testing.T) {
	r, err := OpenDir(testutil.Fixture("tiny-bert-embeddings"))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(r.Dir) {
		t.Errorf("Dir %q is not absolute", r.Dir)
	}
	if got, err := r.ONNXFile(""); err != nil || got != "onnx/model.onnx" {
		t.Errorf("ONNXFile = %q, %v", got, err)
	}
	if !r.Has("tokenizer.json") || r.Has("nope.json") || r.Has("onnx") {
		t.Error("Has answers wrongly")
	}
	if _, err := r.ONNXFile("quantized"); err == nil {
		t.Error("missing quantized variant accepted")
	}
}

func TestONNXVariants(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "onnx"), 0o755)
	for _, f := range []string{"model.onnx", "onnx/model_quantized.onnx", "onnx/model.onnx"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	r, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"": "onnx/model.onnx", "quantized": "onnx/model_quantized.onnx", "model.onnx": "model.onnx"}
	for name, want := range cases {
		if got, err := r.ONNXFile(name); err != nil || got != want {
			t.Errorf("ONNXFile(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestOpenDirErrors(t *testing.T) {
	if _, err := OpenDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir accepted")
	}
	if _, err := OpenDir(t.TempDir()); err == nil {
		t.Error("empty dir accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenDir(f); err == nil {
		t.Error("file accepted as a repo")
	}
}

func TestSentenceTransformers(t *testing.T) {
	r, _ := OpenDir(testutil.Fixture("tiny-bert-embeddings"))
	st, err := r.SentenceTransformers()
	if err != nil {
		t.Fatal(err)
	}
	want := &SentenceTransformers{Pooling: PoolMean, Normalize: true, MaxSeqLength: 128, Dimension: 32}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("got %+v, want %+v", st, want)
	}
	r2, _ := OpenDir(testutil.Fixture("tiny-bert-ner"))
	if st, err := r2.SentenceTransformers(); st != nil || err != nil {
		t.Errorf("non-ST repo: %+v, %v", st, err)
	}
}

func TestPoolingModes(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want Pooling
		ok   bool
	}{
		{`{"pooling_mode_cls_token": true}`, PoolCLS, true},
		{`{"pooling_mode_max_tokens": true}`, PoolMax, true},
		{`{"pooling_mode_lasttoken": true}`, PoolLastToken, true},
		{`{"pooling_mode_mean_sqrt_len_tokens": true}`, PoolMeanSqrt, true},
		{`{}`, "", false},
		{`{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}`, "", false},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "1_Pooling"), 0o755)
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"bert"}`), 0o644)
		os.WriteFile(filepath.Join(dir, "modules.json"), []byte(`[{"path":"","type":"sentence_transformers.models.Transformer"},{"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]`), 0o644)
		os.WriteFile(filepath.Join(dir, "1_Pooling", "config.json"), []byte(tc.cfg), 0o644)
		r, _ := OpenDir(dir)
		st, err := r.SentenceTransformers()
		if !tc.ok {
			if err == nil {
				t.Errorf("%s accepted", tc.cfg)
			}
			continue
		}
		if err != nil || st.Pooling != tc.want || st.Normalize {
			t.Errorf("%s: %+v, %v", tc.cfg, st, err)
		}
	}
}

func TestInferTask(t *testing.T) {
	cases := []struct {
		fixture string
		outputs map[string]int
		want    string
	}{
		{"tiny-bert-embeddings", map[string]int{"last_hidden_state": 3}, "feature-extraction"},
		{"tiny-bert-ner", map[string]int{"logits": 3}, "token-classification"},
		{"tiny-bert-classifier", map[string]int{"logits": 2}, "text-classification"},
		{"tiny-gpt2", map[string]int{"logits": 3}, "text-generation"},
		{"tiny-whisper", nil, "automatic-speech-recognition"},
		{"tiny-wav2vec2-ctc", nil, "automatic-speech-recognition"},
		{"bench-minilm-l6-graph", map[string]int{"last_hidden_state": 3}, "feature-extraction"},
	}
	for _, c := range cases {
		r, err := OpenDir(testutil.Fixture(c.fixture))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.InferTask(c.outputs); err != nil || got != c.want {
			t.Errorf("%s: InferTask = %q, %v; want %q", c.fixture, got, err, c.want)
		}
	}
}

func TestInferTaskFromReadmeAndArchitecture(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["BertForSequenceClassification"]}`), 0o644)
	r, _ := OpenDir(dir)
	if got, _ := r.InferTask(nil); got != "text-classification" {
		t.Errorf("architecture: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlicense: mit\npipeline_tag: \"sentence-similarity\"\ntags:\n  - x\n---\n# card\npipeline_tag: nope\n"), 0o644)
	if got, _ := r.InferTask(nil); got != "sentence-similarity" {
		t.Errorf("README: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("# no front matter\npipeline_tag: x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"unknown"}`), 0o644)
	if _, err := r.InferTask(nil); err == nil {
		t.Error("unknown model accepted")
	}
}

func TestLabels(t *testing.T) {
	r, _ := OpenDir(testutil.Fixture("tiny-bert-ner"))
	cfg, err := r.Config()
	if err != nil {
		t.Fatal(err)
	}
	labels, err := cfg.Labels()
	want := []string{"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"}
	if err != nil || !reflect.DeepEqual(labels, want) {
		t.Errorf("Labels = %v, %v", labels, err)
	}
	bad := Config{ID2Label: map[string]string{"0": "a", "2": "b"}}
	if _, err := bad.Labels(); err == nil {
		t.Error("gapped ids accepted")
	}
	if cfg.MaxPositions() != 512 {
		t.Errorf("MaxPositions = %d", cfg.MaxPositions())
	}
}
