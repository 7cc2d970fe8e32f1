package tokenize

import (
	"path/filepath"
	"testing"
)

// TestConvertTokensToString: the decoder applied to token strings, which need not be in the
// vocabulary (transformers' convert_tokens_to_string on already-joined words).
func TestConvertTokensToString(t *testing.T) {
	wp := loadTokenizer(t, filepath.Join(fixturesDir, "tiny-bert-ner", "tokenizer.json"))
	for _, c := range []struct {
		tokens []string
		want   string
	}{
		{[]string{"in", "h"}, "in h"},
		{[]string{"##ur", "##ich"}, "##urich"},
		{[]string{"てす", "。"}, "てす 。"},
		{[]string{"don", "'", "t", "stop", "."}, "don ' t stop."}, // cleanup runs per token, as in Rust's decode_chain
		{[]string{"Москва", "##🔥"}, "Москва🔥"},
		{nil, ""},
	} {
		got, err := wp.ConvertTokensToString(c.tokens)
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.tokens, got, err, c.want)
		}
	}
	if p := wp.ContinuingSubwordPrefix(); p != "##" {
		t.Errorf("WordPiece prefix %q", p)
	}
	bpe := loadTokenizer(t, filepath.Join(fixturesDir, "tokenizers", "bytelevel_bpe.json"))
	if p := bpe.ContinuingSubwordPrefix(); p != "" {
		t.Errorf("byte-level BPE prefix %q", p)
	}
	if got, err := bpe.ConvertTokensToString([]string{"Hello", "Ġworld"}); err != nil || got != "Hello world" {
		t.Errorf("byte-level: %q, %v", got, err)
	}
	uni := loadTokenizer(t, filepath.Join(fixturesDir, "tokenizers", "unigram.json"))
	if p := uni.ContinuingSubwordPrefix(); p != "" {
		t.Errorf("unigram prefix %q", p)
	}
}
