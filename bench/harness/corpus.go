// Package harness measures Infergo against a raw ONNX Runtime loop on the benchmark model:
// the same corpora, the same machine, side by side in one process. It backs the go test
// benchmarks in bench/ and the `compare`, `saturation` and `rss` commands under bench/cmd.
//
// Protocol (the one of ../shared/specs/peers-cpu.md): every configuration makes one untimed
// pass over the corpus (warm-up), then timed passes; a pass's throughput is lines ÷ wall time,
// and a configuration reports the median of its passes.
package harness

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/infergo/infergo/bench/load"
	"github.com/infergo/infergo/tokenize"
)

// Corpus is a benchmark text file, one input per line, with its token ids.
type Corpus struct {
	Name  string
	Texts []string
	// IDs are the tokenizer's ids with special tokens ([CLS] … [SEP]), one slice per text.
	IDs [][]int32
}

// Tokens returns the total number of tokens, special tokens included.
func (c *Corpus) Tokens() int {
	n := 0
	for _, ids := range c.IDs {
		n += len(ids)
	}
	return n
}

// LoadCorpus reads path (one text per line; blank lines skipped) and tokenizes every line
// with tok, adding special tokens and truncating at maxLen.
func LoadCorpus(path string, tok *tokenize.Tokenizer, maxLen int) (*Corpus, error) {
	texts, err := load.ReadLines(path)
	if err != nil {
		return nil, err
	}
	c := &Corpus{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Texts: texts}
	opts := tokenize.Options{AddSpecialTokens: true, Truncation: &tokenize.Truncation{MaxLength: maxLen}}
	for i, t := range texts {
		enc, err := tok.Encode(t, opts)
		if err != nil {
			return nil, fmt.Errorf("harness: tokenize %s line %d: %w", path, i+1, err)
		}
		c.IDs = append(c.IDs, enc.IDs)
	}
	return c, nil
}

// FixedBatches cuts the corpus into batches of size rows, as the peers' raw loop does: with
// sorted, lines are first stably sorted by token length (so each batch pads little); without,
// they keep corpus order. Each batch lists indices into c.IDs.
func (c *Corpus) FixedBatches(size int, sorted bool) [][]int {
	order := make([]int, len(c.IDs))
	for i := range order {
		order[i] = i
	}
	if sorted {
		sort.SliceStable(order, func(a, b int) bool { return len(c.IDs[order[a]]) < len(c.IDs[order[b]]) })
	}
	var out [][]int
	for i := 0; i < len(order); i += size {
		out = append(out, order[i:min(i+size, len(order))])
	}
	return out
}
