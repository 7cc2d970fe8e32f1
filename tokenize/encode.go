package tokenize

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// minParallelBytes is the input each EncodeBatch goroutine should have to be worth starting:
// 4 KiB is ~1,000 tokens, ~0.25 ms of encoding at 3–4 M tokens per CPU-second, far more than
// a goroutine's start and wake-up.
const minParallelBytes = 4 << 10

// maxWindows bounds the overflowing windows of a truncated pair (see postProcess).
const maxWindows = 4096

// Encode encodes one text.
func (t *Tokenizer) Encode(text string, o Options) (*Encoding, error) {
	return t.encode(text, "", false, o)
}

// EncodePair encodes a pair of texts (question/context, sentence pairs...).
func (t *Tokenizer) EncodePair(text, pair string, o Options) (*Encoding, error) {
	return t.encode(text, pair, true, o)
}

// EncodeBatch encodes inputs in parallel (at most GOMAXPROCS at a time), then pads them
// together per o.Padding.
func (t *Tokenizer) EncodeBatch(inputs []Input, o Options) ([]*Encoding, error) {
	out := make([]*Encoding, len(inputs))
	errs := make([]error, len(inputs))
	size := 0
	for _, in := range inputs {
		size += len(in.Text) + len(in.Pair)
	}
	// A few short texts encode in microseconds: waking goroutines for them costs more than
	// it saves, so small batches run on the caller's goroutine.
	workers := min(runtime.GOMAXPROCS(0), len(inputs), 1+size/minParallelBytes)
	if workers <= 1 {
		for i, in := range inputs {
			out[i], errs[i] = t.encode(in.Text, in.Pair, in.HasPair, o)
		}
	} else {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(inputs); i = int(next.Add(1) - 1) {
					out[i], errs[i] = t.encode(inputs[i].Text, inputs[i].Pair, inputs[i].HasPair, o)
				}
			}()
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
	}
	if o.Padding != nil {
		padEncodings(out, o.Padding)
		for _, e := range out {
			e.finish()
		}
	}
	return out, nil
}

func (t *Tokenizer) addedTokensCount(pair bool) int {
	if t.postProcessor == nil {
		return 0
	}
	return t.postProcessor.addedTokens(pair)
}

func (t *Tokenizer) encode(text, pair string, hasPair bool, o Options) (*Encoding, error) {
	for _, s := range []string{text, pair} {
		if !utf8.ValidString(s) {
			return nil, errors.New("tokenize: input is not valid UTF-8")
		}
		if len(s) >= math.MaxInt32 {
			return nil, errors.New("tokenize: input too long")
		}
	}
	if tr := o.Truncation; tr != nil {
		if tr.MaxLength < 0 || tr.Stride < 0 {
			return nil, errors.New("tokenize: negative truncation length or stride")
		}
		// Rust's with_truncation check (in usize arithmetic).
		if eff := tr.MaxLength - t.addedTokensCount(false); eff >= 0 && eff < tr.Stride {
			return nil, fmt.Errorf("tokenize: truncation stride %d is not smaller than the effective maximum length %d", tr.Stride, eff)
		}
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// The sequence encodings can live in the scratch when post-processing copies them into a new
	// encoding: always, except for one sequence without a post-processor.
	var dst [2]*Encoding
	if t.postProcessor != nil || hasPair {
		dst = [2]*Encoding{&sc.enc[0], &sc.enc[1]}
	}
	enc, err := t.encodeSequence(text, 0, o.Truncation, sc, dst[0])
	if err != nil {
		return nil, err
	}
	var encPair *Encoding
	if hasPair {
		if encPair, err = t.encodeSequence(pair, 1, o.Truncation, sc, dst[1]); err != nil {
			return nil, err
		}
	}
	final, err := t.postProcess(enc, encPair, o)
	if err != nil {
		return nil, err
	}
	final.finish()
	return final, nil
}

// encodeSequence runs added tokens, normalization, pre-tokenization and the model on one text.
func (t *Tokenizer) encodeSequence(text string, typeID int32, tr *Truncation, sc *scratch, dst *Encoding) (*Encoding, error) {
	sc.toks = sc.toks[:0]
	sc.ar.reset()
	p := &sc.pt
	p.splits = append(sc.main[:0], piece{n: newNstr(text, &sc.ar)})
	defer func() { sc.main = p.splits[:0] }()
	if err := t.added.splitAdded(p, t.added.raw, sc, nil); err != nil {
		return nil, err
	}
	if err := t.added.splitAdded(p, t.added.norm, sc, t.normalizerOrNil()); err != nil {
		return nil, err
	}
	if t.preTokenizer != nil {
		if err := t.preTokenizer.preTokenize(p, sc); err != nil {
			return nil, err
		}
	}
	if err := t.tokenizePieces(p, typeID, tr, sc); err != nil {
		return nil, err
	}
	return t.buildEncoding(p, text, typeID, sc, dst), nil
}

func (t *Tokenizer) normalizerOrNil() normalizer {
	if t.normalizer == nil {
		return nil
	}
	return t.normalizer
}

// tokenizePieces runs the model on the untokenized pieces; with truncation it stops once
// max_length tokens exist, from the right or the left (Rust's tokenize_with_limit, which also
// bounds the overflowing windows).
func (t *Tokenizer) tokenizePieces(p *pretok, typeID int32, tr *Truncation, sc *scratch) error {
	run := func(i int) (int, error) {
		s := &p.splits[i]
		if s.done {
			return s.tokHi - s.tokLo, nil
		}
		lo := len(sc.toks)
		var err error
		sc.toks, err = t.model.tokenize(s.n.s, sc.toks, sc)
		if err != nil {
			return 0, err
		}
		s.tokLo, s.tokHi, s.done = lo, len(sc.toks), true
		return s.tokHi - s.tokLo, nil
	}
	if tr == nil || (tr.Strategy == OnlySecond && typeID == 0) {
		for i := range p.splits {
			if _, err := run(i); err != nil {
				return err
			}
		}
		return nil
	}
	total := 0
	if tr.Direction == Right {
		last := 0
		for i := range p.splits {
			wasDone := p.splits[i].done
			n, err := run(i)
			if err != nil {
				return err
			}
			total += n
			last = i + 1
			if !wasDone && total >= tr.MaxLength {
				break
			}
		}
		p.splits = p.splits[:last]
		return nil
	}
	first := len(p.splits)
	for i := len(p.splits) - 1; i >= 0; i-- {
		wasDone := p.splits[i].done
		n, err := run(i)
		if err != nil {
			return err
		}
		total += n
		first = i
		if !wasDone && total >= tr.MaxLength {
			break
		}
	}
	p.splits = p.splits[first:]
	return nil
}

// buildEncoding is into_encoding with character offsets (Rust's encode_char_offsets).
func (t *Tokenizer) buildEncoding(p *pretok, text string, typeID int32, sc *scratch, e *Encoding) *Encoding {
	n := 0
	for _, s := range p.splits {
		n += s.tokHi - s.tokLo
	}
	if e == nil {
		e = newEncoding(n)
	} else {
		e.clear()
	}
	conv := newCharConverter(text, sc)
	for idx, s := range p.splits {
		for _, tk := range sc.toks[s.tokLo:s.tokHi] {
			bs, be, ok := s.n.origRange(tk.start, tk.end)
			if !ok {
				bs, be = tk.start, tk.end
			}
			cs, ce := conv.convert(bs, be)
			e.IDs = append(e.IDs, tk.id)
			e.TypeIDs = append(e.TypeIDs, typeID)
			e.Tokens = append(e.Tokens, tk.value)
			e.ByteOffsets = append(e.ByteOffsets, Offset{bs, be})
			e.Offsets = append(e.Offsets, Offset{cs, ce})
			e.SpecialTokensMask = append(e.SpecialTokensMask, 0)
			e.AttentionMask = append(e.AttentionMask, 1)
			e.WordIDs = append(e.WordIDs, idx)
		}
	}
	return e
}

// charConverter is BytesToCharOffsetConverter.
type charConverter struct {
	ascii bool
	n     int
	idx   []int // byte -> index of the character containing it
}

func newCharConverter(text string, sc *scratch) charConverter {
	if isASCII(text) {
		return charConverter{ascii: true, n: len(text)}
	}
	idx := sc.ints[:0]
	i := 0
	for _, c := range text {
		for range utf8.RuneLen(c) {
			idx = append(idx, i)
		}
		i++
	}
	sc.ints = idx
	return charConverter{n: len(text), idx: idx}
}

func (c charConverter) at(b int) (int, bool) {
	if b < 0 || b >= c.n {
		return 0, false
	}
	if c.ascii {
		return b, true
	}
	return c.idx[b], true
}

func (c charConverter) convert(s, e int) (int, int) {
	cs, ok := c.at(s)
	if !ok {
		return s, e // Rust keeps the byte offsets when the start is out of the map
	}
	if ce, ok := c.at(e); ok {
		return cs, ce
	}
	last, ok := c.at(e - 1)
	if !ok {
		last = cs + 1
	}
	return cs, last + 1
}

// postProcess is Rust's post_process: truncation, special tokens, padding.
func (t *Tokenizer) postProcess(enc, pair *Encoding, o Options) (*Encoding, error) {
	if tr := o.Truncation; tr != nil {
		params := *tr
		if n := t.addedTokensCount(pair != nil); o.AddSpecialTokens && n > 0 {
			if params.MaxLength < n {
				// usize underflow in Rust: the limit becomes huge, nothing is truncated.
				params.MaxLength = math.MaxInt
			} else {
				params.MaxLength -= n
			}
		}
		if err := truncateEncodings(enc, pair, &params); err != nil {
			return nil, err
		}
		// Rust combines every window of a pair with every window of the other sequence, and
		// copies nested windows at each later merge (cubic); refuse what would take gigabytes.
		if pair != nil && (len(enc.Overflowing)+1)*(len(pair.Overflowing)+1) > maxWindows {
			return nil, fmt.Errorf("tokenize: truncation would produce more than %d overflowing windows", maxWindows)
		}
	}
	var final *Encoding
	if t.postProcessor != nil {
		encs := []*Encoding{enc}
		if pair != nil {
			encs = append(encs, pair)
		}
		for i, e := range encs {
			e.setSequenceID(i)
			for _, ov := range e.Overflowing {
				ov.setSequenceID(i)
			}
			e.setTypeIDs(int32(i))
		}
		out, err := t.postProcessor.process(encs, o.AddSpecialTokens)
		if err != nil {
			return nil, err
		}
		final = mergeEncodings(out)
	} else if pair == nil {
		final = enc
	} else {
		final = &Encoding{}
		for i, e := range []*Encoding{enc, pair} {
			e.setSequenceID(i)
			final.mergeWith(e)
		}
	}
	if o.Padding != nil {
		padEncodings([]*Encoding{final}, o.Padding)
	}
	return final, nil
}

func truncateEncodings(enc, pair *Encoding, p *Truncation) error {
	left := p.Direction == Left
	if p.MaxLength == 0 {
		if err := enc.truncate(0, p.Stride, left); err != nil {
			return err
		}
		if pair != nil {
			return pair.truncate(0, p.Stride, left)
		}
		return nil
	}
	total := enc.Len()
	if pair != nil {
		total += pair.Len()
	}
	if total <= p.MaxLength {
		return nil
	}
	toRemove := total - p.MaxLength
	switch p.Strategy {
	case LongestFirst:
		if pair == nil {
			return enc.truncate(p.MaxLength, p.Stride, left)
		}
		n1, n2 := enc.Len(), pair.Len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > p.MaxLength {
			n2 = n1
		} else {
			n2 = max(n1, p.MaxLength-n1)
		}
		if n1+n2 > p.MaxLength {
			n1 = p.MaxLength / 2
			n2 = n1 + p.MaxLength%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		if err := enc.truncate(n1, p.Stride, left); err != nil {
			return err
		}
		return pair.truncate(n2, p.Stride, left)
	default:
		target := enc
		if p.Strategy == OnlySecond {
			if pair == nil {
				return errors.New("tokenize: truncation error: second sequence not provided")
			}
			target = pair
		}
		if target.Len() <= toRemove {
			return errors.New("tokenize: truncation error: sequence to truncate too short to respect the provided max_length")
		}
		return target.truncate(target.Len()-toRemove, p.Stride, left)
	}
}

// Decode turns ids back into text with the tokenizer's decoder (exactly HF's decode, including
// the decoder's cleanup rules). Unknown ids are an error (Rust skips them silently).
func (t *Tokenizer) Decode(ids []int32, skipSpecialTokens bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		tok, ok := t.IDToToken(id)
		if !ok {
			return "", fmt.Errorf("tokenize: decode: unknown id %d", id)
		}
		if skipSpecialTokens && t.added.special[tok] {
			continue
		}
		tokens = append(tokens, tok)
	}
	if t.decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	parts, err := t.decoder.decodeChain(tokens)
	if err != nil {
		return "", fmt.Errorf("tokenize: decode: %w", err)
	}
	return strings.Join(parts, ""), nil
}
