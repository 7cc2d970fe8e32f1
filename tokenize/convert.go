package tokenize

import (
	"fmt"
	"strings"
)

// ConvertTokensToString joins token strings into text with the tokenizer's decoder, as
// transformers' convert_tokens_to_string does for fast tokenizers (decoder.decode(tokens)).
// Unlike Decode it takes strings, which need not be vocabulary tokens: the
// token-classification pipeline decodes words it has already joined. Without a decoder the
// tokens are joined with spaces, as transformers does.
func (t *Tokenizer) ConvertTokensToString(tokens []string) (string, error) {
	if t.decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	parts, err := t.decoder.decodeChain(append([]string(nil), tokens...))
	if err != nil {
		return "", fmt.Errorf("tokenize: convert tokens to string: %w", err)
	}
	return strings.Join(parts, ""), nil
}

// ContinuingSubwordPrefix returns the model's continuing_subword_prefix ("##" for WordPiece),
// or "" when the model has none (BPE without one, Unigram, WordLevel). transformers'
// token-classification pipeline tells sub-words apart by it.
func (t *Tokenizer) ContinuingSubwordPrefix() string {
	switch m := t.model.(type) {
	case *wordPiece:
		return m.prefix
	case *bpe:
		return m.prefix
	}
	return ""
}
