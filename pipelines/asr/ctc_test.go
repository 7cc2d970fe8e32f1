package asr

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

type ctcGolden struct {
	ArgmaxIDs []int32 `json:"argmax_ids"`
	Text      string  `json:"text"`
	Pipeline  struct {
		Text string `json:"text"`
	} `json:"pipeline"`
}

func TestCTCParity(t *testing.T) {
	var g ctcGolden
	readGolden(t, ctcDir, &g)
	r := loadRepo(t, ctcDir, LoadOptions{})
	pcm := loadPCM(t, filepath.Join(ctcDir, "sample.wav"), 16000)
	res, err := r.Transcribe(context.Background(), pcm, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sequences) != 1 || !slices.Equal(res.Sequences[0], g.ArgmaxIDs) {
		t.Fatalf("argmax ids differ:\n got %v\nwant %v", res.Sequences, g.ArgmaxIDs)
	}
	if res.Text != g.Text || res.Text != g.Pipeline.Text {
		t.Fatalf("text %q\nwant %q", res.Text, g.Text)
	}
}
