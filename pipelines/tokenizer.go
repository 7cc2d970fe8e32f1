package pipelines

import (
	"context"

	"github.com/infergo/infergo/tokenize"
)

// textTokenizer adapts *tokenize.Tokenizer to TextTokenizer.
type textTokenizer struct{ tok *tokenize.Tokenizer }

// NewTextTokenizer exposes tok for the /tokenize and /decode routes.
func NewTextTokenizer(tok *tokenize.Tokenizer) TextTokenizer { return textTokenizer{tok} }

// Tokenize implements TextTokenizer. Non-special tokens carry their byte span of the input
// and the input's text there; special tokens carry their own string and no span, as TEI does.
func (t textTokenizer) Tokenize(ctx context.Context, texts []string, addSpecialTokens bool) ([][]Token, error) {
	if len(texts) == 0 {
		return nil, EmptyError("inputs", "`inputs` cannot be empty")
	}
	inputs := make([]tokenize.Input, len(texts))
	for i, s := range texts {
		inputs[i] = tokenize.Input{Text: s}
	}
	encs, err := t.tok.EncodeBatch(inputs, tokenize.Options{AddSpecialTokens: addSpecialTokens})
	if err != nil {
		return nil, Invalidf("inputs", "tokenization failed: %v", err)
	}
	out := make([][]Token, len(encs))
	for i, enc := range encs {
		toks := make([]Token, enc.Len())
		for k := range toks {
			id := enc.IDs[k]
			tk := Token{ID: id, Special: enc.SpecialTokensMask[k] == 1}
			if tk.Special {
				tk.Text = enc.Tokens[k]
			} else {
				start, stop := enc.ByteOffsets[k].Start, enc.ByteOffsets[k].End
				tk.Text = texts[i][start:stop]
				tk.Start, tk.Stop = &start, &stop
			}
			toks[k] = tk
		}
		out[i] = toks
	}
	return out, nil
}

// Decode implements TextTokenizer.
func (t textTokenizer) Decode(ctx context.Context, ids [][]int32, skipSpecialTokens bool) ([]string, error) {
	if len(ids) == 0 {
		return nil, EmptyError("ids", "`ids` cannot be empty")
	}
	out := make([]string, len(ids))
	for i, seq := range ids {
		s, err := t.tok.Decode(seq, skipSpecialTokens)
		if err != nil {
			return nil, Invalidf("ids", "%v", err)
		}
		out[i] = s
	}
	return out, nil
}
