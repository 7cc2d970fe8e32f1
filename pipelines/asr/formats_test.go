package asr

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infergo/infergo/pipelines/asr/audio"
)

// TestFormatsTranscribe checks that what the pure-Go decoders feed the model is what
// upstream's ffmpeg path would: for every format the log-mel features of the Go-decoded audio
// stay within tolerance of those of the ffmpeg-decoded audio, and the transcript (the fixture
// model's first 120 greedy tokens) is identical. The tiny model has random weights and is chaotic:
// a small change in the input eventually flips a token. go-mp3 decodes to 16-bit samples
// (ffmpeg to float), which is enough to flip the fixture's tokens after a few steps, so MP3
// is held to its features and its first generated tokens.
func TestFormatsTranscribe(t *testing.T) {
	ff := audio.FindFFmpeg()
	if ff == "" {
		t.Fatal("ffmpeg is not on PATH; `make deps` installs it")
	}
	r := loadRepo(t, whisperDir, LoadOptions{})
	w := whisperOf(t, r)
	cases := []struct {
		file      string
		meanAbs   float64 // feature tolerance
		sameFirst int     // generated tokens that must match (-1: all)
	}{
		{"speech.wav", 0, -1},
		{"speech_f32.wav", 0, -1},
		{"speech.flac", 0, -1},
		{"speech_22k_stereo.wav", 1e-6, -1},
		{"speech_44k_stereo_24bit.flac", 1e-6, -1},
		{"speech_stereo.ogg", 1e-6, -1},
		{"speech.mp3", 5e-4, 4},
		{"speech_44k_stereo.mp3", 5e-4, 4},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := readFile(t, filepath.Join(audioDir, c.file))
			goPCM, err := (&audio.Decoder{}).Decode(ctx, data, 16000)
			if err != nil {
				t.Fatal(err)
			}
			ffPCM, err := audio.DecodeWithFFmpeg(ctx, ff, data, 16000)
			if err != nil {
				t.Fatal(err)
			}
			a, b := w.mel.Compute(goPCM), w.mel.Compute(ffPCM)
			var sum, worst float64
			for i := range a {
				d := math.Abs(float64(a[i] - b[i]))
				sum += d
				worst = max(worst, d)
			}
			mean := sum / float64(len(a))
			t.Logf("features against ffmpeg's audio: mean abs %.2g, max abs %.2g", mean, worst)
			if mean > c.meanAbs {
				t.Fatalf("features differ by %.3g on average (tolerance %g)", mean, c.meanAbs)
			}
			ra, err := r.Transcribe(ctx, goPCM, Options{Language: "en", MaxNewTokens: 120})
			if err != nil {
				t.Fatal(err)
			}
			rb, err := r.Transcribe(ctx, ffPCM, Options{Language: "en", MaxNewTokens: 120})
			if err != nil {
				t.Fatal(err)
			}
			sa, sb := ra.Sequences[0], rb.Sequences[0]
			if c.sameFirst < 0 {
				if !slices.Equal(sa, sb) || ra.Text != rb.Text {
					t.Fatalf("transcripts differ:\n go     %q\n ffmpeg %q", ra.Text, rb.Text)
				}
				return
			}
			n := 4 + c.sameFirst // the prompt, then the generated tokens
			if !slices.Equal(sa[:n], sb[:n]) {
				t.Fatalf("first tokens differ: %v, ffmpeg %v", sa[:n], sb[:n])
			}
		})
	}
	// Formats only ffmpeg reads transcribe like their source does through the same path.
	for _, f := range []string{"speech.opus", "speech.webm", "speech.m4a"} {
		pcm := loadPCM(t, filepath.Join(audioDir, f), 16000)
		if res, err := r.Transcribe(ctx, pcm, Options{Language: "en", MaxNewTokens: 8}); err != nil || res.Text == "" {
			t.Fatalf("%s: %q %v", f, res.Text, err)
		}
	}
}
