package onnxedit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
)

// The merged graph is exercised end to end by pipelines/asr (TestWhisperMergedDecoder);
// this checks its structure and the error paths.
func TestMergeDecoders(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testutil.Fixture("tiny-whisper"), "onnx", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	noPast, withPast := read("decoder_model.onnx"), read("decoder_with_past_model.onnx")
	merged, err := MergeDecoders(noPast, withPast)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseModel(merged)
	if err != nil {
		t.Fatal(err)
	}
	ins, _, err := valueInfos(m.graph, graphInput)
	if err != nil {
		t.Fatal(err)
	}
	outs, _, err := valueInfos(m.graph, graphOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := "input_ids encoder_hidden_states past_key_values.0.decoder.key"
	if got := strings.Join(ins, " "); !strings.HasPrefix(got, want) || ins[len(ins)-1] != "use_cache_branch" || len(ins) != 11 {
		t.Fatalf("inputs %v", ins)
	}
	if len(outs) != 9 || outs[0] != "logits" {
		t.Fatalf("outputs %v", outs)
	}
	if _, err := MergeDecoders([]byte("not onnx"), withPast); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := MergeDecoders(noPast, []byte{}); err == nil {
		t.Fatal("a model without a graph accepted")
	}
}
