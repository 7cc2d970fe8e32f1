package whispermodel

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines/asr"
	"github.com/infergo/infergo/pipelines/asr/audio"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
)

// small is a Whisper layout with few, narrow layers, so the test builds it in a second.
var small = Shape{Name: "small", DModel: 64, Heads: 4, FFN: 128, EncoderLayers: 2, DecoderLayers: 2,
	Vocab: 51865, Mels: 80, SourcePositions: 1500, TargetPosits: 448}

// TestWhisperShapedModel builds the small model, transcribes real speech with it through the
// pipeline (prompt graph, then cached steps), and checks every generated token against the
// prompt graph run over the whole sequence without a cache.
func TestWhisperShapedModel(t *testing.T) {
	dir, err := Write(testutil.Root(), t.TempDir(), small)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() }) // after the sessions' cleanups
	repo, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := asr.Load(ctx, repo, asr.LoadOptions{Opener: env, Runtime: runtime.Options{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	wav, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "audio", "speech.wav"))
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := (&audio.Decoder{}).Decode(ctx, wav, 16000)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Transcribe(ctx, pcm, asr.Options{Language: "en", MaxNewTokens: 12})
	if err != nil {
		t.Fatal(err)
	}
	seq := res.Sequences[0]
	if !slices.Equal(seq[:4], []int32{SOT, firstLang, Transcribe, NoTimestamps}) || len(seq) != 16 {
		t.Fatalf("sequence %v", seq)
	}

	// The same tokens from the prompt graph alone, one full pass.
	pre, _ := asr.ParsePreprocessorConfig(mustRead(t, dir, "preprocessor_config.json"))
	mel, _ := asr.NewLogMel(pre)
	feats := mel.Compute(pcm)
	enc := open(t, env, dir, "encoder_model.onnx")
	encOut := make([]runtime.Tensor, 1)
	if err := enc.Run(ctx, []runtime.Tensor{runtime.NewTensor([]int64{1, 80, 3000}, feats)}, encOut); err != nil {
		t.Fatal(err)
	}
	dec := open(t, env, dir, "decoder_model.onnx")
	ids := make([]int64, len(seq)-1)
	for i := range ids {
		ids[i] = int64(seq[i])
	}
	info := dec.Info()
	in := make([]runtime.Tensor, len(info.Inputs))
	in[info.Input("input_ids")] = runtime.NewTensor([]int64{1, int64(len(ids))}, ids)
	in[info.Input("encoder_hidden_states")] = encOut[0]
	out := make([]runtime.Tensor, len(info.Outputs))
	if err := dec.Run(ctx, in, out); err != nil {
		t.Fatal(err)
	}
	logits := out[info.Output("logits")].Float32s()
	gen, _ := asr.ParseGenerationConfig(mustRead(t, dir, "generation_config.json"), asr.ModelConfig{})
	V := small.Vocab
	for p := 3; p < len(ids); p++ {
		row := slices.Clone(logits[p*V : (p+1)*V])
		for _, s := range gen.SuppressTokens {
			row[s] = float32(math.Inf(-1))
		}
		if p == 3 {
			for _, s := range gen.BeginSuppressTokens {
				row[s] = float32(math.Inf(-1))
			}
		}
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		if int32(best) != seq[p+1] {
			t.Fatalf("position %d: cached decoding chose %d, a full pass %d", p, seq[p+1], best)
		}
	}
}

func mustRead(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, env *ort.Environment, dir, name string) runtime.Session {
	t.Helper()
	s, err := env.Open(context.Background(), filepath.Join(dir, "onnx", name), runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
