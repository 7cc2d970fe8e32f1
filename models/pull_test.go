package models

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

// TestPullFixtures downloads each fixture repo from the fake Hub and checks that exactly
// the files its task needs arrive, byte for byte, and nothing else (no weights, no other
// variants, no test data).
func TestPullFixtures(t *testing.T) {
	cases := []struct {
		fixture string
		task    string // empty: inferred
		files   []string
		graphs  []string
	}{
		{
			fixture: "tiny-bert-embeddings",
			files: []string{"1_Pooling/config.json", "config.json", "modules.json", "onnx/model.onnx", "onnx/model.onnx_data",
				"sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"},
			graphs: []string{"onnx/model.onnx"},
		},
		{
			fixture: "tiny-whisper",
			files: []string{"config.json", "generation_config.json", "onnx/decoder_model.onnx", "onnx/decoder_with_past_model.onnx",
				"onnx/encoder_model.onnx", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"},
			graphs: []string{"onnx/encoder_model.onnx", "onnx/decoder_model.onnx", "onnx/decoder_with_past_model.onnx"},
		},
		{
			fixture: "tiny-gpt2",
			files: []string{"config.json", "generation_config.json", "onnx/decoder_with_past_model.onnx", "onnx/model.onnx",
				"tokenizer.json", "tokenizer_config.json"},
			graphs: []string{"onnx/model.onnx", "onnx/decoder_with_past_model.onnx"},
		},
		{
			fixture: "tiny-wav2vec2-ctc",
			files:   []string{"config.json", "onnx/model.onnx", "preprocessor_config.json", "tokenizer_config.json", "vocab.json"},
			graphs:  []string{"onnx/model.onnx"},
		},
		{
			fixture: "tiny-bert-ner", task: "token-classification",
			files:  []string{"config.json", "onnx/model.onnx", "tokenizer.json", "tokenizer_config.json"},
			graphs: []string{"onnx/model.onnx"},
		},
	}
	fh := hubtest.Start(t)
	h := testHub(t, fh)
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			id := "infergo-test/" + tc.fixture
			commit := addFixture(t, fh, id, tc.fixture, weightsDecoys, hubtest.RepoOptions{})
			r := pull(t, h, id, PullOptions{Task: tc.task})
			if r.Commit != commit || r.ID != id || r.Dir != h.Cache().SnapshotDir(id, commit) {
				t.Errorf("repo = %+v, want commit %s", r, commit)
			}
			if !reflect.DeepEqual(r.Files, tc.files) {
				t.Errorf("Files = %q\nwant    %q", r.Files, tc.files)
			}
			if !reflect.DeepEqual(r.Graphs, tc.graphs) {
				t.Errorf("Graphs = %q, want %q", r.Graphs, tc.graphs)
			}
			if got := filesUnder(t, r.Dir); !reflect.DeepEqual(got, tc.files) {
				t.Errorf("snapshot holds %q", got)
			}
			for _, f := range tc.files {
				want, _ := os.ReadFile(testutil.Fixture(tc.fixture, f))
				got, err := os.ReadFile(r.Path(f))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s differs from the fixture (%v)", f, err)
				}
			}
			if g, err := r.ONNXFile(""); err != nil || g != tc.graphs[0] {
				t.Errorf("ONNXFile(\"\") = %q, %v", g, err)
			}
		})
	}
	for _, req := range fh.Requests() {
		for _, decoy := range []string{"pytorch_model", "safetensors", "golden.json", "sample.wav", ".npy", "model_quantized", "openvino"} {
			if strings.Contains(req.Path, decoy) {
				t.Errorf("fetched %s", req)
			}
		}
	}
}

func TestPulledRepoReadsLikeLocal(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/emb", "tiny-bert-embeddings", nil, hubtest.RepoOptions{})
	r := pull(t, testHub(t, fh), "org/emb", PullOptions{})
	st, err := r.SentenceTransformers()
	if err != nil || st == nil || st.Pooling != PoolMean || !st.Normalize {
		t.Fatalf("SentenceTransformers = %+v, %v", st, err)
	}
	if task, err := r.InferTask(nil); err != nil || task != "feature-extraction" {
		t.Errorf("InferTask = %q, %v", task, err)
	}
	local, err := OpenDir(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := local.ONNXFile(""); g != "onnx/model.onnx" {
		t.Errorf("OpenDir(snapshot).ONNXFile = %q", g)
	}
}

// TestPullVariant picks a quantized export by variant name and by path.
func TestPullVariant(t *testing.T) {
	fh := hubtest.Start(t)
	graph, _ := os.ReadFile(testutil.Fixture("tiny-bert-classifier", "onnx", "model.onnx"))
	files, _ := hubtest.ReadDir(testutil.Fixture("tiny-bert-classifier"))
	files["onnx/model_quantized.onnx"] = append([]byte(nil), graph...)
	files["onnx/model_fp16.onnx"] = append(append([]byte(nil), graph...), 0x0a, 0x00) // trailing empty field 1
	fh.AddRepo("org/cls", files, hubtest.RepoOptions{})
	h := testHub(t, fh)
	for _, tc := range []struct{ onnx, want string }{
		{"q8", "onnx/model_quantized.onnx"},
		{"fp16", "onnx/model_fp16.onnx"},
		{"onnx/model_fp16.onnx", "onnx/model_fp16.onnx"},
		{"", "onnx/model.onnx"},
	} {
		r := pull(t, h, "org/cls", PullOptions{ONNXFile: tc.onnx})
		if !reflect.DeepEqual(r.Graphs, []string{tc.want}) {
			t.Errorf("%q: Graphs = %q", tc.onnx, r.Graphs)
		}
		if g, err := r.ONNXFile(tc.onnx); err != nil || g != tc.want {
			t.Errorf("ONNXFile(%q) = %q, %v", tc.onnx, g, err)
		}
	}
	_, err := h.Pull(t.Context(), "org/cls", PullOptions{ONNXFile: "int8"})
	if err == nil || !strings.Contains(err.Error(), "onnx/model_quantized.onnx") {
		t.Errorf("missing variant: %v (want the available files listed)", err)
	}
	if _, err := h.Pull(t.Context(), "org/cls", PullOptions{ONNXFile: "../../etc/passwd"}); err == nil {
		t.Error("escaping --onnx-file accepted")
	}
}

// TestExternalDataFollowsGraph: the graph names its data file, and only that is fetched
// even when other *_data files sit next to it.
func TestExternalDataFollowsGraph(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/emb", "tiny-bert-embeddings", map[string][]byte{
		"onnx/model_fp16.onnx_data": bytes.Repeat([]byte{9}, 1000),
		"onnx/other.onnx_data":      bytes.Repeat([]byte{8}, 1000),
	}, hubtest.RepoOptions{})
	r := pull(t, testHub(t, fh), "org/emb", PullOptions{})
	if !r.Has("onnx/model.onnx_data") || r.Has("onnx/model_fp16.onnx_data") || r.Has("onnx/other.onnx_data") {
		t.Errorf("files: %q", filesUnder(t, r.Dir))
	}
	if n := fh.CountRequests(isCDNGet("")); n != 2 {
		t.Errorf("%d CDN downloads, want 2 (graph + its data)", n)
	}
}

func TestOnnxExternalLocationsFixtures(t *testing.T) {
	for _, tc := range []struct {
		path []string
		want []string
	}{
		{[]string{"tiny-bert-embeddings", "onnx", "model.onnx"}, []string{"model.onnx_data"}},
		{[]string{"tiny-bert-ner", "onnx", "model.onnx"}, []string{}},
		{[]string{"tiny-whisper", "onnx", "decoder_with_past_model.onnx"}, []string{}},
		{[]string{"bench-minilm-l6-graph", "onnx", "model.onnx"}, []string{"model.onnx.data"}},
	} {
		got, err := onnxExternalLocations(testutil.Fixture(tc.path...))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", filepath.Join(tc.path...), got, err, tc.want)
		}
	}
}
