package tokenize

// pretok mirrors Rust's PreTokenizedString: the pieces of one input sequence, each either still
// to be tokenized or already holding its tokens (added tokens).
type pretok struct {
	splits []piece
}

type piece struct {
	n nstr
	// toks[tokLo:tokHi] of the pretok's scratch are this piece's tokens when done.
	tokLo, tokHi int
	done         bool
}

// token is what a model returns: an id, its string and byte offsets in the piece.
type token struct {
	id         int32
	value      string
	start, end int
}

// scratch holds buffers reused by one encoding call (pooled between calls).
type scratch struct {
	matches []match
	pieces  []nstr
	splits  []piece // spare piece list for pretok.split
	main    []piece // the pretok's own list between calls
	asplits []addedSplit
	toks    []token
	ints    []int
	enc     [2]Encoding // sequence encodings that post-processing copies anyway
	ar      arena
	pt      pretok
	syms    []symbol
	heap    mergeHeap
	// bpeCaches holds BPE results per model (see bpeCacheFor).
	bpeCaches map[*bpe]map[string][]cachedSym
}

// split replaces every piece that has no tokens by the non-empty pieces fn makes of it.
func (p *pretok) split(sc *scratch, fn func(n nstr, out []nstr) ([]nstr, error)) error {
	out := sc.splits[:0]
	for _, s := range p.splits {
		if s.done {
			out = append(out, s)
			continue
		}
		pieces, err := fn(s.n, sc.pieces[:0])
		sc.pieces = pieces[:0]
		if err != nil {
			return err
		}
		for _, n := range pieces {
			if !n.empty() {
				out = append(out, piece{n: n})
			}
		}
	}
	// Swap buffers: the old split list becomes the next scratch list.
	sc.splits = p.splits[:0]
	p.splits = out
	return nil
}

// normalize applies fn to every piece without tokens.
func (p *pretok) normalize(fn func(n *nstr) error) error {
	for i := range p.splits {
		if !p.splits[i].done {
			if err := fn(&p.splits[i].n); err != nil {
				return err
			}
		}
	}
	return nil
}
