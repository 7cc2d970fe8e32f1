package models

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func listingOf(paths ...string) listing {
	l := listing{}
	for _, p := range paths {
		l[p] = RepoFile{Path: p, Size: 1}
	}
	return l
}

func TestSelectGraphs(t *testing.T) {
	whisperTJS := listingOf("config.json", "onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx",
		"onnx/decoder_model.onnx", "onnx/decoder_with_past_model.onnx",
		"onnx/encoder_model_q4.onnx", "onnx/decoder_model_merged_q4.onnx",
		"onnx/encoder_model_quantized.onnx", "onnx/decoder_model_merged_quantized.onnx")
	whisperOptimum := listingOf("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx")
	gpt2TJSv2 := listingOf("onnx/decoder_model_merged.onnx", "onnx/decoder_model.onnx", "onnx/decoder_with_past_model.onnx",
		"onnx/decoder_model_merged_fp16.onnx")
	gpt2Optimum := listingOf("model.onnx", "decoder_with_past_model.onnx")
	bert := listingOf("onnx/model.onnx", "onnx/model_fp16.onnx", "onnx/model_quantized.onnx", "onnx/model_int8.onnx",
		"model.onnx", "onnx/model.onnx_data")
	cases := []struct {
		name       string
		l          listing
		task, onnx string
		want       []string
	}{
		{"tjs whisper", whisperTJS, "automatic-speech-recognition", "", []string{"onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx"}},
		{"tjs whisper q4", whisperTJS, "automatic-speech-recognition", "q4", []string{"onnx/encoder_model_q4.onnx", "onnx/decoder_model_merged_q4.onnx"}},
		{"tjs whisper q8", whisperTJS, "", "q8", []string{"onnx/encoder_model_quantized.onnx", "onnx/decoder_model_merged_quantized.onnx"}},
		{"whisper split decoders by path", whisperTJS, "automatic-speech-recognition", "onnx/decoder_model.onnx",
			[]string{"onnx/encoder_model.onnx", "onnx/decoder_model.onnx", "onnx/decoder_with_past_model.onnx"}},
		{"whisper merged q4 by path", whisperTJS, "automatic-speech-recognition", "onnx/decoder_model_merged_q4.onnx",
			[]string{"onnx/encoder_model_q4.onnx", "onnx/decoder_model_merged_q4.onnx"}},
		{"optimum whisper", whisperOptimum, "", "", []string{"encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"}},
		{"tjs v2 gpt2", gpt2TJSv2, "text-generation", "", []string{"onnx/decoder_model_merged.onnx"}},
		{"tjs v2 gpt2 fp16", gpt2TJSv2, "text-generation", "fp16", []string{"onnx/decoder_model_merged_fp16.onnx"}},
		{"optimum gpt2", gpt2Optimum, "text-generation", "", []string{"model.onnx", "decoder_with_past_model.onnx"}},
		{"optimum gpt2, task unknown", gpt2Optimum, "", "", []string{"model.onnx", "decoder_with_past_model.onnx"}},
		{"bert prefers onnx/", bert, "feature-extraction", "", []string{"onnx/model.onnx"}},
		{"bert root by path", bert, "feature-extraction", "model.onnx", []string{"model.onnx"}},
		{"bert int8", bert, "text-classification", "int8", []string{"onnx/model_int8.onnx"}},
		{"bert _fp16", bert, "text-classification", "_fp16", []string{"onnx/model_fp16.onnx"}},
		{"bert fp32", bert, "text-classification", "fp32", []string{"onnx/model.onnx"}},
		{"encoder-only export for embeddings", whisperOptimum, "feature-extraction", "", []string{"encoder_model.onnx"}},
		{"custom name by path", listingOf("onnx/weird.onnx", "onnx/model.onnx"), "", "onnx/weird.onnx", []string{"onnx/weird.onnx"}},
	}
	for _, tc := range cases {
		got, err := selectGraphs(tc.l, "org/x", tc.task, tc.onnx)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestSelectGraphsErrors(t *testing.T) {
	for _, tc := range []struct {
		l          listing
		task, onnx string
		text       string
	}{
		{listingOf("pytorch_model.bin", "config.json"), "", "", "no ONNX files"},
		{listingOf("onnx/model.onnx"), "", "q4", "onnx/model.onnx"},
		{listingOf("onnx/model.onnx"), "", "onnx/missing.onnx", "no file"},
		{listingOf("onnx/model.onnx"), "", "../x.onnx", "not a clean"},
		{listingOf("onnx/model.onnx"), "", "bad name!", "variant name"},
		{listingOf("onnx/encoder_model.onnx"), "text-generation", "", "text-generation"},
	} {
		_, err := selectGraphs(tc.l, "org/x", tc.task, tc.onnx)
		if err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%v %q %q: %v (want %q)", tc.l.sortedPaths(), tc.task, tc.onnx, err, tc.text)
		}
		if err != nil && tc.text != "not a clean" && tc.text != "variant name" && !errors.Is(err, ErrNoONNX) {
			t.Errorf("%v: not ErrNoONNX", err)
		}
	}
}

func TestMetadataPlan(t *testing.T) {
	present, absent := metadataPlan(listingOf("config.json", "tokenizer.json", "vocab.txt", "modules.json",
		"1_Pooling/config.json", "2_Dense/config.json", "2_Dense/pytorch_model.bin", "README.md", "onnx/model.onnx", "x/1_Foo/config.json"))
	want := []string{"config.json", "README.md", "modules.json", "tokenizer.json", "1_Pooling/config.json", "2_Dense/config.json"}
	if !reflect.DeepEqual(present, want) {
		t.Errorf("present %q", present)
	}
	if len(absent) != len(metadataFiles)-4 {
		t.Errorf("absent %q", absent)
	}
	present, _ = metadataPlan(listingOf("config.json", "vocab.json", "merges.txt", "tokenizer_config.json"))
	if want := []string{"config.json", "tokenizer_config.json", "vocab.json", "merges.txt"}; !reflect.DeepEqual(present, want) {
		t.Errorf("without tokenizer.json: %q", present)
	}
}

func TestExternalDataPaths(t *testing.T) {
	got, err := externalDataPaths("onnx/model.onnx", []string{"model.onnx_data", "./weights/part1.bin"})
	if err != nil || !reflect.DeepEqual(got, []string{"onnx/model.onnx_data", "onnx/weights/part1.bin"}) {
		t.Errorf("%q, %v", got, err)
	}
	if got, err := externalDataPaths("model.onnx", []string{"model.onnx.data"}); err != nil || got[0] != "model.onnx.data" {
		t.Errorf("root: %q, %v", got, err)
	}
	for _, bad := range []string{"../secret", "/etc/passwd", "a/../../b", "x\x00y", `..\x`, ""} {
		if _, err := externalDataPaths("onnx/model.onnx", []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	l := listingOf("onnx/model.onnx", "onnx/model.onnx_data", "onnx/model.onnx_data_1", "onnx/model.onnx.data", "onnx/model.onnx_database")
	if got := guessExternalData(l, "onnx/model.onnx"); !reflect.DeepEqual(got, []string{"onnx/model.onnx.data", "onnx/model.onnx_data", "onnx/model.onnx_data_1"}) {
		t.Errorf("guess: %q", got)
	}
}
