package tokenize

import "unicode/utf8"

// Byte-level (GPT-2) mapping between bytes and printable characters.

var (
	byteToRune [256]rune
	// byteToUTF8 holds the UTF-8 encoding of byteToRune (1 or 2 bytes).
	byteToUTF8 [256]string
	runeToByte = map[rune]byte{}
)

func init() {
	var bs []int
	for b := '!'; b <= '~'; b++ {
		bs = append(bs, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		bs = append(bs, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		bs = append(bs, b)
	}
	in := [256]bool{}
	for _, b := range bs {
		in[b] = true
		byteToRune[b] = rune(b)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !in[b] {
			byteToRune[b] = rune(256 + n)
			n++
		}
	}
	for b := 0; b < 256; b++ {
		byteToUTF8[b] = string(byteToRune[b])
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelTransform replaces every byte of n by its byte-level character. The first character
// of an original character's bytes replaces it; the others are insertions, aligned with the last
// byte of the original character (Rust's transform with changes 0, 1, 1...).
func byteLevelTransform(n *nstr) error {
	lo, hi, ok := n.fullNormRange()
	if !ok {
		return nil
	}
	if lo != 0 || hi != len(n.s) {
		// Unusual alignments: take the general path.
		dest := make([]change, 0, 2*len(n.s))
		for i := 0; i < len(n.s); {
			_, sz := decodeAt(n.s, i)
			for k := 0; k < sz; k++ {
				dest = append(dest, change{byteToRune[n.s[i+k]], b2i(k > 0)})
			}
			i += sz
		}
		return n.transformAll(dest, 0)
	}
	size := 0
	for i := 0; i < len(n.s); i++ {
		size += len(byteToUTF8[n.s[i]])
	}
	buf := n.ar.bytes(size)
	align := n.ar.spans(size)
	for i := 0; i < len(n.s); {
		_, sz := decodeAt(n.s, i)
		first, last := n.align[i], n.align[i+sz-1]
		for k := 0; k < sz; k++ {
			enc := byteToUTF8[n.s[i+k]]
			buf = append(buf, enc...)
			a := first
			if k > 0 {
				a = last
			}
			for range len(enc) {
				align = append(align, a)
			}
		}
		i += sz
	}
	n.s = bytesToString(buf)
	n.align = align
	return nil
}

// byteLevelPre is the ByteLevel pre-tokenizer.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) preTokenize(p *pretok, sc *scratch) error {
	err := p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		if b.addPrefixSpace && (n.s == "" || n.s[0] != ' ') {
			if err := n.prepend(" "); err != nil {
				return out, err
			}
		}
		if b.useRegex {
			return n.splitBy(regexPattern{gpt2Finder{}}, splitIsolated, sc, out)
		}
		if !n.empty() {
			out = append(out, n)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	return p.normalize(func(n *nstr) error { return byteLevelTransform(n) })
}

// byteLevelDecode is the ByteLevel decoder: byte-level characters back to bytes (a token with
// any other character is kept as it is), then lossy UTF-8 decoding of the whole.
func byteLevelDecode(tokens []string) []string {
	var buf []byte
	for _, t := range tokens {
		start := len(buf)
		ok := true
		for _, c := range t {
			b, found := runeToByte[c]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return []string{lossyUTF8(buf)}
}

// lossyUTF8 is Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one
// U+FFFD.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		// Invalid: skip the maximal prefix of a valid sequence (Unicode "maximal subpart").
		i += maximalSubpart(b[i:])
		out = append(out, "\uFFFD"...)
	}
	return string(out)
}

// maximalSubpart returns the length (>= 1) of the longest prefix of b that is the start of a
// well-formed UTF-8 sequence.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for k := 0; k < need && i < len(b); k++ {
		x := b[i]
		if k == 0 {
			if x < lo || x > hi {
				return i
			}
		} else if x < 0x80 || x > 0xBF {
			return i
		}
		i++
	}
	return i
}

// trimOffsets is process_offsets of the ByteLevel and Roberta post-processors: offsets of
// tokens starting or ending with spaces (Ġ or Unicode whitespace) are shrunk.
func trimOffsets(e *Encoding, addPrefixSpace bool) {
	for i, tok := range e.Tokens {
		lead, trail := 0, 0
		for _, c := range tok {
			if c != 'Ġ' && !isWhitespace(c) {
				break
			}
			lead++
		}
		for j := len(tok); j > 0; {
			c, n := utf8.DecodeLastRuneInString(tok[:j])
			if c != 'Ġ' && !isWhitespace(c) {
				break
			}
			trail++
			j -= n
		}
		if lead == 0 && trail == 0 {
			continue
		}
		o, bo := &e.Offsets[i], &e.ByteOffsets[i]
		if lead > 0 {
			if (i == 0 || o.Start == 0) && addPrefixSpace && lead == 1 {
				lead = 0
			}
			o.Start = min(o.Start+lead, o.End)
			bo.Start = min(bo.Start+lead, bo.End)
		}
		if trail > 0 && o.End >= trail {
			o.End = max(o.End-trail, o.Start)
		}
		if trail > 0 && bo.End >= trail {
			bo.End = max(bo.End-trail, bo.Start)
		}
	}
}
