package asr

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infergo/infergo/internal/onnxedit"
)

// mergedWhisperRepo lays out the tiny-whisper fixture as transformers.js repos do: the
// encoder plus decoder_model_merged.onnx, built from the fixture's two decoders with the
// If/use_cache_branch protocol of optimum's merge.
func mergedWhisperRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "generation_config.json", "preprocessor_config.json",
		"tokenizer.json", "tokenizer_config.json", "onnx/encoder_model.onnx"} {
		if err := os.WriteFile(filepath.Join(dir, f), readFile(t, filepath.Join(whisperDir, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := onnxedit.MergeDecoders(readFile(t, filepath.Join(whisperDir, "onnx/decoder_model.onnx")),
		readFile(t, filepath.Join(whisperDir, "onnx/decoder_with_past_model.onnx")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "onnx/decoder_model_merged.onnx"), merged, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWhisperMergedDecoder runs the golden checks through the merged graph: prompt with
// use_cache_branch=false and empty past tensors, steps with true and the cache.
func TestWhisperMergedDecoder(t *testing.T) {
	var g whisperGolden
	readGolden(t, whisperDir, &g)
	r := loadRepo(t, mergedWhisperRepo(t), LoadOptions{})
	w := whisperOf(t, r)
	if !w.dec.g.merged {
		t.Fatal("the merged graph was not picked")
	}
	pcm := loadPCM(t, filepath.Join(whisperDir, "sample.wav"), 16000)
	res, err := r.Transcribe(context.Background(), pcm, Options{Language: "en", MaxNewTokens: len(g.GreedyNewIDs)})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(g.PromptIDs), g.GreedyNewIDs...); !slices.Equal(res.Sequences[0], want) || res.Text != g.Text {
		t.Fatalf("merged greedy %v %q\nwant %v %q", res.Sequences[0], res.Text, want, g.Text)
	}
	// Teacher forcing through the merged graph.
	tf := g.TeacherForced
	var argmaxes []int32
	w.dec.force = func(st *whisperSeq, logits []float32) (int32, bool) {
		argmaxes = append(argmaxes, argmax(logits))
		if p := len(st.ids); p < len(tf.IDs) {
			return tf.IDs[p], true
		}
		return 0, true
	}
	if _, err := r.Transcribe(context.Background(), pcm, Options{Language: "en", MaxNewTokens: len(tf.IDs) - len(g.PromptIDs) + 1}); err != nil {
		t.Fatal(err)
	}
	if want := tf.Argmax[len(g.PromptIDs)-1:]; !slices.Equal(argmaxes, want) {
		t.Fatalf("merged teacher-forced argmax %v, want %v", argmaxes, want)
	}
	// Concurrent windows share merged steps too: long audio through it.
	w.dec.force = nil
	long := loadPCM(t, filepath.Join(audioDir, "long.ogg"), 16000)
	split := loadRepo(t, whisperDir, LoadOptions{})
	a, err := r.Transcribe(context.Background(), long, Options{Language: "en", MaxNewTokens: 30})
	if err != nil {
		t.Fatal(err)
	}
	b, err := split.Transcribe(context.Background(), long, Options{Language: "en", MaxNewTokens: 30})
	if err != nil {
		t.Fatal(err)
	}
	if a.Text != b.Text {
		t.Fatalf("merged and split decoders disagree on long audio:\n%q\n%q", a.Text, b.Text)
	}
}
