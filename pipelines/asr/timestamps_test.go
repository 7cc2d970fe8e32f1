package asr

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/bench/whispermodel"
	"github.com/infergo/infergo/internal/testutil"
)

// smallWhisper is a Whisper-shaped model with random weights and Whisper's real vocabulary
// layout (timestamp tokens included), which the tiny fixture lacks.
var smallWhisper = whispermodel.Shape{Name: "small", DModel: 64, Heads: 4, FFN: 128, EncoderLayers: 2,
	DecoderLayers: 2, Vocab: 51865, Mels: 80, SourcePositions: 1500, TargetPosits: 448}

// TestWhisperTimestamps checks segment timestamps end to end: the prompt drops
// <|notimestamps|>, the timestamp rules shape the generated sequence (first token a
// timestamp within max_initial_timestamp_index, never decreasing), and chunks cover the
// text with [start, end] pairs, also across the windows of long audio.
func TestWhisperTimestamps(t *testing.T) {
	dir, err := whispermodel.Write(testutil.Root(), t.TempDir(), smallWhisper)
	if err != nil {
		t.Fatal(err)
	}
	r := loadRepo(t, dir, LoadOptions{})
	w := whisperOf(t, r)
	if !w.SupportsTimestamps() {
		t.Fatal("timestamp tokens not found")
	}
	ctx := context.Background()
	for _, f := range []string{"speech.wav", "long.ogg"} {
		pcm := loadPCM(t, filepath.Join(audioDir, f), 16000)
		res, err := r.Transcribe(ctx, pcm, Options{Language: "en", Timestamps: true, MaxNewTokens: 60})
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range res.Sequences {
			if seq[0] != whispermodel.SOT || seq[2] != whispermodel.Transcribe || seq[3] < w.tsBegin || seq[3] > w.tsBegin+50 {
				t.Fatalf("%s: sequence starts %v: want the prompt without <|notimestamps|>, then an early timestamp", f, seq[:4])
			}
			last := int32(0)
			for _, id := range seq[3:] {
				if id >= w.tsBegin {
					if id < last {
						t.Fatalf("%s: timestamps decrease in %v", f, seq)
					}
					last = id
				}
			}
		}
		if len(res.Chunks) == 0 {
			t.Fatalf("%s: no chunks (text %q)", f, res.Text)
		}
		var text strings.Builder
		prev := -1.0
		for i, c := range res.Chunks {
			text.WriteString(c.Text)
			if c.Start == nil || (c.End == nil && i != len(res.Chunks)-1) {
				t.Fatalf("%s: chunk %d has no start or a missing end before the last", f, i)
			}
			if *c.Start < prev || (c.End != nil && *c.End < *c.Start) {
				t.Fatalf("%s: chunk %d [%v, %v] after %v", f, i, *c.Start, c.End, prev)
			}
			prev = *c.Start
			if c.End != nil {
				prev = *c.End
			}
		}
		if text.String() != res.Text {
			t.Fatalf("%s: chunks %q do not add up to the text %q", f, text.String(), res.Text)
		}
		if dur := float64(len(pcm)) / 16000; prev > dur+30 {
			t.Fatalf("%s: timestamps reach %v s for %v s of audio", f, prev, dur)
		}
		t.Logf("%s: %d windows, %d chunks", f, res.Windows, len(res.Chunks))
	}
	// Without timestamps the same model answers plain text, no chunks.
	res, err := r.Transcribe(ctx, loadPCM(t, filepath.Join(audioDir, "speech.wav"), 16000), Options{Language: "en", MaxNewTokens: 5})
	if err != nil || res.Chunks != nil {
		t.Fatalf("plain: %v %v", res.Chunks, err)
	}
}
