package tokenize

import (
	"sort"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Unicode normalization as done by the Rust crate unicode-normalization-alignments (Unicode 9.0):
// the same decompositions as x/text for the characters that existed in 9.0, Unicode 9.0 combining
// classes and composition pairs, and the crate's streaming algorithm, which reports for each
// output character whether it replaces an input character (0), is inserted (1) or absorbs
// following ones (-n). Those changes drive the offset alignments, so they are reproduced exactly.

const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

// compositionMap is built once from the generated Unicode 9.0 pair list.
var compositionMap = func() map[uint64]rune {
	m := make(map[uint64]rune, len(compositions))
	for _, c := range compositions {
		m[uint64(c[0])<<32|uint64(c[1])] = c[2]
	}
	return m
}()

func compose(a, b rune) (rune, bool) {
	switch {
	case a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount:
		return hangulSBase + ((a-hangulLBase)*hangulNCount + (b-hangulVBase)*hangulTCount), true
	case a >= hangulSBase && a < hangulSBase+hangulSCount && b > hangulTBase && b < hangulTBase+hangulTCount && (a-hangulSBase)%hangulTCount == 0:
		return a + (b - hangulTBase), true
	}
	r, ok := compositionMap[uint64(a)<<32|uint64(b)]
	return r, ok
}

// decompose appends the full decomposition of c to out.
func decompose(c rune, compat bool, out []rune) []rune {
	if c < 0x80 {
		return append(out, c)
	}
	if c >= hangulSBase && c < hangulSBase+hangulSCount {
		s := c - hangulSBase
		out = append(out, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t > 0 {
			out = append(out, hangulTBase+t)
		}
		return out
	}
	p := props(c)
	form := norm.NFD
	if compat {
		if p&pNoCompatDecomp != 0 {
			return append(out, c)
		}
		form = norm.NFKD
	} else if p&pNoCanonDecomp != 0 {
		return append(out, c)
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], c)
	d := form.Properties(buf[:n]).Decomposition()
	if len(d) == 0 {
		return append(out, c)
	}
	for len(d) > 0 {
		r, sz := utf8.DecodeRune(d)
		out = append(out, r)
		d = d[sz:]
	}
	return out
}

type nfItem struct {
	r   rune
	c   int32
	ccc uint8
}

// unicodeNormalize returns the changes of NFD/NFKD (compose false) or NFC/NFKC of s.
func unicodeNormalize(s string, compat, composeForm bool, out []change) []change {
	items := decomposeItems(s, compat)
	if !composeForm {
		for _, it := range items {
			out = append(out, change{it.r, it.c})
		}
		return out
	}
	return recompose(items, out)
}

// decomposeItems is the crate's Decompositions iterator: decomposed characters, each run of
// non-starters stably sorted by combining class, each carrying 0 for the first character of a
// decomposition and 1 for the others.
func decomposeItems(s string, compat bool) []nfItem {
	items := make([]nfItem, 0, len(s)+4)
	var tmp [8]rune
	pending := 0 // start of the unsorted segment
	for _, ch := range s {
		d := decompose(ch, compat, tmp[:0])
		for i, r := range d {
			cc := ccc(r)
			if cc == 0 {
				sortByCCC(items[pending:])
				pending = len(items)
			}
			items = append(items, nfItem{r, b2i(i != 0), cc})
		}
	}
	sortByCCC(items[pending:])
	return items
}

// sortByCCC is a stable sort on the combining class: insertion sort for the usual short runs of
// marks, the library's stable sort for long ones (adversarial input).
func sortByCCC(a []nfItem) {
	if len(a) > 32 {
		sort.SliceStable(a, func(i, j int) bool { return a[i].ccc < a[j].ccc })
		return
	}
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j-1].ccc > a[j].ccc; j-- {
			a[j-1], a[j] = a[j], a[j-1]
		}
	}
}

// recompose is the crate's Recompositions state machine over decomposed items.
func recompose(items []nfItem, out []change) []change {
	var (
		composee    nfItem
		hasComposee bool
		lastCCC     int = -1 // -1: None
		buffer      []change
	)
	emit := func(it nfItem) { out = append(out, change{it.r, it.c}) }
	for _, it := range items {
		chClass := it.ccc
		if !hasComposee {
			if chClass != 0 {
				emit(it)
				continue
			}
			composee, hasComposee = it, true
			continue
		}
		if lastCCC < 0 {
			if r, ok := compose(composee.r, it.r); ok {
				composee = nfItem{r, composee.c + it.c - 1, ccc(r)}
				continue
			}
			if chClass == 0 {
				emit(composee)
				composee = it
				continue
			}
			buffer = append(buffer, change{it.r, it.c})
			lastCCC = int(chClass)
			continue
		}
		if lastCCC >= int(chClass) {
			// it is blocked from the composee.
			if chClass == 0 {
				emit(composee)
				out = append(out, buffer...)
				buffer = buffer[:0]
				composee = it
				lastCCC = -1
				continue
			}
			buffer = append(buffer, change{it.r, it.c})
			lastCCC = int(chClass)
			continue
		}
		if r, ok := compose(composee.r, it.r); ok {
			composee = nfItem{r, composee.c + it.c - 1, ccc(r)}
			continue
		}
		buffer = append(buffer, change{it.r, it.c})
		lastCCC = int(chClass)
	}
	if hasComposee {
		emit(composee)
	}
	return append(out, buffer...)
}

// isASCII reports whether s has only ASCII bytes: such text is unchanged by every normalization
// form.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeForm applies NFD, NFKD, NFC or NFKC to n.
func (n *nstr) normalizeForm(compat, composeForm bool) error {
	if isASCII(n.s) {
		if lo, hi, ok := n.fullNormRange(); ok && lo == 0 && hi == len(n.s) {
			return nil
		}
	}
	dest := unicodeNormalize(n.s, compat, composeForm, make([]change, 0, len(n.s)+8))
	return n.transformAll(dest, 0)
}

// lowerRune reports the Rust char::to_lowercase of c when it is one character.
func lowerRune(c rune) (rune, bool) {
	if c < utf8.RuneSelf {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c, true
	}
	if props(c)&pLowerException != 0 {
		s := lowercaseExceptions[c]
		r, n := utf8.DecodeRuneInString(s)
		return r, n == len(s)
	}
	return unicode.ToLower(c), true
}

// lowercase is NormalizedString::lowercase (Rust char::to_lowercase per character).
func (n *nstr) lowercase() error {
	simple := true
	for _, c := range n.s {
		if c >= utf8.RuneSelf && props(c)&pLowerException != 0 {
			if _, one := lowerRune(c); !one {
				simple = false
				break
			}
		}
	}
	if simple {
		return n.mapRunes(func(c rune) rune { r, _ := lowerRune(c); return r })
	}
	dest := make([]change, 0, len(n.s)+4)
	for _, c := range n.s {
		if r, one := lowerRune(c); one {
			dest = append(dest, change{r, 0})
			continue
		}
		i := 0
		for _, r := range lowercaseExceptions[c] {
			dest = append(dest, change{r, b2i(i > 0)})
			i++
		}
	}
	return n.transformAll(dest, 0)
}
