package tokenize

import (
	"errors"
	"unicode/utf8"
	"unsafe"
)

// span is a half-open byte range of the original input.
type span struct{ start, end int32 }

// nstr mirrors Rust's NormalizedString: the normalized text and, for each of its bytes, the span
// of the original input it came from. Unlike Rust, spans are absolute (offsets into the whole
// input, not into this piece), which makes slicing free; Rust's relative alignments plus
// original_shift give the same numbers.
//
// An nstr never modifies its arrays in place: transformations build new ones, so slices of a
// parent can share memory safely.
type nstr struct {
	s         string
	align     []span
	origStart int // original_shift
	origEnd   int // original_shift + len(original)
	ar        *arena
}

// arena hands out buffers for the normalized text and alignments of one encoding call: they
// never outlive the call (tokens carry vocabulary strings or copies), so the memory is reused by
// the next call instead of being garbage.
type arena struct {
	b []byte
	s []span
}

func (a *arena) reset() {
	a.b, a.s = a.b[:0], a.s[:0]
}

// bytes returns an empty slice with capacity n.
func (a *arena) bytes(n int) []byte {
	if a == nil {
		return make([]byte, 0, n)
	}
	if cap(a.b)-len(a.b) < n {
		a.b = make([]byte, 0, max(n, 2*cap(a.b), 4096))
	}
	l := len(a.b)
	a.b = a.b[:l+n]
	return a.b[l : l : l+n]
}

// spans returns an empty slice with capacity n.
func (a *arena) spans(n int) []span {
	if a == nil {
		return make([]span, 0, n)
	}
	if cap(a.s)-len(a.s) < n {
		a.s = make([]span, 0, max(n, 2*cap(a.s), 1024))
	}
	l := len(a.s)
	a.s = a.s[:l+n]
	return a.s[l : l : l+n]
}

// change is one output character of a transformation, as in Rust's transform(): c is 0 when the
// character replaces the next input character, 1 when it is inserted, and -n when it replaces the
// next input character and removes the n following ones.
type change struct {
	r rune
	c int32
}

var errAlignment = errors.New("tokenize: internal alignment error")

func newNstr(text string, ar *arena) nstr {
	align := ar.spans(len(text))[:len(text)]
	for i := 0; i < len(text); {
		n := 1
		if text[i] >= utf8.RuneSelf {
			_, n = utf8.DecodeRuneInString(text[i:])
		}
		sp := span{int32(i), int32(i + n)}
		for j := 0; j < n; j++ {
			align[i+j] = sp
		}
		i += n
	}
	return nstr{s: text, align: align, origEnd: len(text), ar: ar}
}

func (n *nstr) empty() bool { return len(n.s) == 0 }

// fullNormRange is convert_offsets(Range::Original(..)): the normalized range covering the whole
// original piece. Leading characters whose alignment is empty are excluded, as in Rust.
func (n *nstr) fullNormRange() (int, int, bool) {
	if n.origStart == n.origEnd {
		// Empty target: Rust returns the (empty) original range itself.
		return 0, 0, true
	}
	start, end := -1, -1
	os, oe := int32(n.origStart), int32(n.origEnd)
	for i, a := range n.align {
		if oe < a.end {
			break
		}
		if start < 0 && os <= a.start && a.start != a.end {
			start = i
		}
		end = i + 1
	}
	switch {
	case start >= 0 && end >= 0:
		return start, end, true
	case start >= 0:
		return start, start, true
	case end >= 0:
		return end, end, true
	}
	return 0, 0, false
}

// origRange is convert_offsets(Range::Normalized(a..b)) made absolute: the original span of
// normalized bytes a..b. ok is false when a..b is out of range (Rust returns None).
func (n *nstr) origRange(a, b int) (int, int, bool) {
	if a == b {
		// Rust returns the target range unchanged, read as original offsets.
		return n.origStart + a, n.origStart + b, true
	}
	if a > b || b > len(n.align) || a < 0 {
		return 0, 0, false
	}
	return int(n.align[a].start), int(n.align[b-1].end), true
}

// slice returns the part of n covering normalized bytes a..b (NormalizedString::slice with a
// Normalized range). a and b must be character boundaries.
func (n *nstr) slice(a, b int) (nstr, error) {
	if a < 0 || b > len(n.s) || a > b || !boundary(n.s, a) || !boundary(n.s, b) {
		return nstr{}, errAlignment
	}
	os, oe, ok := n.origRange(a, b)
	if !ok {
		return nstr{}, errAlignment
	}
	if os > oe || os < n.origStart || oe > n.origEnd {
		// Rust: original.get(range) is None, so the slice's original is empty.
		oe = os
	}
	return nstr{s: n.s[a:b], align: n.align[a:b], origStart: os, origEnd: oe, ar: n.ar}, nil
}

func boundary(s string, i int) bool {
	return i == 0 || i == len(s) || (i < len(s) && utf8.RuneStart(s[i]))
}

// transform applies a list of changes to the normalized bytes lo..hi, exactly like Rust's
// NormalizedString::transform_range: initial is the number of characters removed before the
// first output character.
func (n *nstr) transform(lo, hi int, dest []change, initial int) error {
	old := n.s[lo:hi]
	// Skip the `initial` removed characters.
	pos := 0 // byte position in old
	for k := 0; k < initial && pos < len(old); k++ {
		_, sz := utf8.DecodeRuneInString(old[pos:])
		pos += sz
	}
	offset := lo + pos // index into n.align of the next replaced character
	newLen := 0
	for _, d := range dest {
		newLen += utf8.RuneLen(d.r)
	}
	buf := n.ar.bytes(len(n.s) - len(old) + newLen)
	buf = append(buf, n.s[:lo]...)
	align := n.ar.spans(cap(buf))
	align = append(align, n.align[:lo]...)
	for _, d := range dest {
		var a span
		if d.c > 0 {
			if offset >= 1 {
				if offset-1 >= len(n.align) {
					return errAlignment
				}
				a = n.align[offset-1]
			} else {
				// Rust uses (0, 0) relative to this piece's original.
				a = span{int32(n.origStart), int32(n.origStart)}
			}
		} else {
			if offset >= len(n.align) {
				return errAlignment
			}
			a = n.align[offset]
		}
		if d.c <= 0 && pos < len(old) {
			_, sz := utf8.DecodeRuneInString(old[pos:])
			pos += sz
			offset += sz
		}
		for k := int32(0); k < -d.c && pos < len(old); k++ {
			_, sz := utf8.DecodeRuneInString(old[pos:])
			pos += sz
			offset += sz
		}
		buf = utf8.AppendRune(buf, d.r)
		for len(align) < len(buf) {
			align = append(align, a)
		}
	}
	buf = append(buf, n.s[hi:]...)
	align = append(align, n.align[hi:]...)
	n.s = bytesToString(buf)
	n.align = align
	return nil
}

// transformAll is Rust's transform(): transform_range over the whole original range.
func (n *nstr) transformAll(dest []change, initial int) error {
	lo, hi, ok := n.fullNormRange()
	if !ok {
		return nil
	}
	return n.transform(lo, hi, dest, initial)
}

// bytesToString converts a buffer that is never written again into a string without copying.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// mapRunes replaces each character by f(c) (NormalizedString::map).
func (n *nstr) mapRunes(f func(rune) rune) error {
	// Fast path: when every character maps to one of the same length over the whole string, the
	// alignments do not move (all bytes of a character always share one span).
	if lo, hi, ok := n.fullNormRange(); ok && lo == 0 && hi == len(n.s) {
		same := true
		for _, c := range n.s {
			if d := f(c); d != c && utf8.RuneLen(d) != utf8.RuneLen(c) {
				same = false
				break
			}
		}
		if same {
			var buf []byte
			for i, c := range n.s {
				if d := f(c); d != c {
					if buf == nil {
						buf = append(n.ar.bytes(len(n.s)), n.s...)
					}
					utf8.EncodeRune(buf[i:], d)
				}
			}
			if buf != nil {
				n.s = bytesToString(buf)
			}
			return nil
		}
	}
	dest := make([]change, 0, len(n.s))
	for _, c := range n.s {
		dest = append(dest, change{f(c), 0})
	}
	return n.transformAll(dest, 0)
}

// filter keeps the characters for which keep is true (NormalizedString::filter).
func (n *nstr) filter(keep func(rune) bool) error {
	all := true
	for _, c := range n.s {
		if !keep(c) {
			all = false
			break
		}
	}
	if all {
		// Rust rebuilds identical alignments when the transformation covers the whole string.
		if lo, hi, ok := n.fullNormRange(); ok && lo == 0 && hi == len(n.s) {
			return nil
		}
	}
	var removed int32
	removedStart := 0
	dest := make([]change, 0, len(n.s))
	var last rune
	hasLast := false
	for _, c := range n.s {
		if keep(c) {
			if hasLast {
				dest = append(dest, change{last, -removed})
			} else {
				removedStart = int(removed)
			}
			last, hasLast = c, true
			removed = 0
		} else {
			removed++
		}
	}
	if hasLast {
		dest = append(dest, change{last, -removed})
	}
	return n.transformAll(dest, removedStart)
}

// prepend inserts s before the first character (NormalizedString::prepend).
func (n *nstr) prepend(s string) error {
	if n.s == "" {
		return nil
	}
	first, sz := utf8.DecodeRuneInString(n.s)
	dest := make([]change, 0, len(s)+1)
	i := 0
	for _, c := range s {
		dest = append(dest, change{c, b2i(i != 0)})
		i++
	}
	dest = append(dest, change{first, 1})
	return n.transform(0, sz, dest, 0)
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// replaceMatches replaces every match of m by content (NormalizedString::replace): each new
// character is aligned with the last byte of the match it replaces.
func (n *nstr) replaceMatches(matches []match, content string) {
	var buf []byte
	var align []span
	last := 0
	for _, m := range matches {
		if !m.isMatch {
			continue
		}
		if buf == nil {
			k := 0
			for _, x := range matches {
				if x.isMatch {
					k++
				}
			}
			size := len(n.s) + k*len(content)
			buf, align = n.ar.bytes(size), n.ar.spans(size)
		}
		buf = append(buf, n.s[last:m.start]...)
		align = append(align, n.align[last:m.start]...)
		var a span
		if m.end >= 1 {
			a = n.align[m.end-1]
		} else {
			a = span{int32(n.origStart), int32(n.origStart)}
		}
		buf = append(buf, content...)
		for len(align) < len(buf) {
			align = append(align, a)
		}
		last = m.end
	}
	if buf == nil {
		return
	}
	buf = append(buf, n.s[last:]...)
	align = append(align, n.align[last:]...)
	n.s = bytesToString(buf)
	n.align = align
}

// lrstrip removes leading and/or trailing whitespace (NormalizedString::lrstrip).
func (n *nstr) lrstrip(left, right bool) error {
	var runes []rune
	for _, c := range n.s {
		runes = append(runes, c)
	}
	lead, trail := 0, 0
	if left {
		for lead < len(runes) && isWhitespace(runes[lead]) {
			lead++
		}
	}
	if right {
		for trail < len(runes) && isWhitespace(runes[len(runes)-1-trail]) {
			trail++
		}
	}
	if lead == 0 && trail == 0 {
		return nil
	}
	dest := make([]change, 0, len(runes))
	count := len(runes)
	for i, c := range runes {
		switch {
		case i < lead || i >= count-trail:
		case i == len(n.s)-trail-1:
			// Rust compares with the byte length here (self.len()), not the char count.
			dest = append(dest, change{c, -int32(trail)})
		default:
			dest = append(dest, change{c, 0})
		}
	}
	return n.transformAll(dest, lead)
}

func isWhitespace(r rune) bool { return props(r)&pSpace != 0 }
