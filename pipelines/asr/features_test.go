package asr

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/infergo/infergo/pipelines/asr/audio"
)

const (
	whisperDir = "../../testdata/fixtures/tiny-whisper"
	ctcDir     = "../../testdata/fixtures/tiny-wav2vec2-ctc"
	audioDir   = "../../testdata/audio"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadPCM(t testing.TB, path string, rate int) []float32 {
	t.Helper()
	pcm, err := (&audio.Decoder{FFmpeg: audio.FindFFmpeg()}).Decode(context.Background(), readFile(t, path), rate)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pcm
}

func TestWhisperFeaturesParity(t *testing.T) {
	cfg, err := ParsePreprocessorConfig(readFile(t, filepath.Join(whisperDir, "preprocessor_config.json")))
	if err != nil {
		t.Fatal(err)
	}
	lm, err := NewLogMel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shape, want, err := readNPY(filepath.Join(whisperDir, "input_features.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != lm.Mels() || shape[1] != lm.Frames() {
		t.Fatalf("reference shape %v, extractor %dx%d", shape, lm.Mels(), lm.Frames())
	}
	got := lm.Compute(loadPCM(t, filepath.Join(whisperDir, "sample.wav"), cfg.SamplingRate))
	var sum, worst float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		sum += d
		worst = max(worst, d)
	}
	mean := sum / float64(len(want))
	t.Logf("input_features vs reference: mean abs %.3g, max abs %.3g", mean, worst)
	if mean > 1e-4 || worst > 1e-3 {
		t.Fatalf("mean abs %.3g (limit 1e-4), max abs %.3g (limit 1e-3)", mean, worst)
	}
	var golden struct {
		First []float64 `json:"features_first_frame"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(whisperDir, "golden.json")), &golden); err != nil {
		t.Fatal(err)
	}
	for k, v := range golden.First {
		if d := math.Abs(float64(got[k*lm.Frames()]) - v); d > 1e-4 {
			t.Fatalf("mel %d of frame 0: %v, golden %v", k, got[k*lm.Frames()], v)
		}
	}
}

func TestWav2Vec2Normalisation(t *testing.T) {
	var golden struct {
		First10 []float64 `json:"input_values_first10"`
		Mean    float64   `json:"input_values_mean"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(ctcDir, "golden.json")), &golden); err != nil {
		t.Fatal(err)
	}
	got := NormalizeZeroMeanUnitVar(loadPCM(t, filepath.Join(ctcDir, "sample.wav"), 16000))
	for i, v := range golden.First10 {
		if d := math.Abs(float64(got[i]) - v); d > 1e-5 {
			t.Fatalf("input_values[%d] = %v, golden %v", i, got[i], v)
		}
	}
	var sum float64
	for _, v := range got {
		sum += float64(v)
	}
	if m := sum / float64(len(got)); math.Abs(m-golden.Mean) > 1e-6 {
		t.Fatalf("mean %v, golden %v", m, golden.Mean)
	}
}

func BenchmarkLogMel30s(b *testing.B) {
	cfg, _ := ParsePreprocessorConfig([]byte(`{}`))
	lm, _ := NewLogMel(cfg)
	x := make([]float32, cfg.NSamples)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.01))
	}
	b.ResetTimer()
	for range b.N {
		lm.Compute(x)
	}
}
