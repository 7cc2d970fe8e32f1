package tokenize

// Hand-written matchers for the two pre-tokenization regexes that matter most. Go's regexp has no
// look-ahead for `\s+(?!\S)`, and a backtracking engine would be slow; these follow the
// alternation order of the patterns exactly (leftmost-first, as onig does) and only look at bytes
// and the property table.

// class of a character for these patterns.
const (
	clsLetter = iota
	clsNumber
	clsSpace
	clsOther
)

func classOf(c rune) int {
	p := props(c)
	switch {
	case p&pLetter != 0:
		return clsLetter
	case p&pNumber != 0:
		return clsNumber
	case p&pSpace != 0:
		return clsSpace
	}
	return clsOther
}

// charAt decodes the character at i (i < len(s)) and its class.
func charAt(s string, i int) (rune, int, int) {
	c, n := decodeAt(s, i)
	return c, n, classOf(c)
}

// runOf returns the end of the run of characters of class cls starting at i.
func runOf(s string, i, cls int) int {
	for i < len(s) {
		_, n, k := charAt(s, i)
		if k != cls {
			break
		}
		i += n
	}
	return i
}

// gpt2Finder: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Every alternative consumes at least one character, so each position either starts a match or
// is skipped; the whole string is covered by matches except nothing (every character belongs to
// one of the classes), which keeps the loop simple.
type gpt2Finder struct{}

func (gpt2Finder) findAll(s string, emit func(int, int)) error {
	for p := 0; p < len(s); {
		e := gpt2At(s, p)
		emit(p, e)
		p = e
	}
	return nil
}

func gpt2At(s string, p int) int {
	c := s[p]
	if c == '\'' && p+1 < len(s) {
		switch s[p+1] {
		case 's', 't', 'm', 'd':
			return p + 2
		case 'r', 'v':
			if p+2 < len(s) && s[p+2] == 'e' {
				return p + 3
			}
		case 'l':
			if p+2 < len(s) && s[p+2] == 'l' {
				return p + 3
			}
		}
	}
	_, n, cls := charAt(s, p)
	if c == ' ' && p+1 < len(s) {
		_, _, next := charAt(s, p+1)
		if next != clsSpace {
			return runOf(s, p+1, next)
		}
	}
	if cls != clsSpace {
		return runOf(s, p+n, cls)
	}
	end, _ := wsRule(s, p)
	return end
}

// cl100kFinder: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+  (GPT-4 cl100k, Llama 3; Qwen2 with maxDigits 1).
type cl100kFinder struct{ maxDigits int }

func (f cl100kFinder) findAll(s string, emit func(int, int)) error {
	for p := 0; p < len(s); {
		e := f.at(s, p)
		emit(p, e)
		p = e
	}
	return nil
}

// foldEq reports whether the character at i case-insensitively equals the ASCII letter l (onig's
// Unicode case folding: only s has an extra form, U+017F LATIN SMALL LETTER LONG S).
func foldEq(s string, i int, l byte) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	c := s[i]
	if c|0x20 == l {
		return 1, true
	}
	if l == 's' && c == 0xC5 && i+1 < len(s) && s[i+1] == 0xBF {
		return 2, true
	}
	return 0, false
}

func contraction(s string, p int) (int, bool) {
	if s[p] != '\'' {
		return 0, false
	}
	q := p + 1
	for _, l := range []byte{'s', 't', 'm', 'd'} {
		if n, ok := foldEq(s, q, l); ok {
			return q + n, true
		}
	}
	for _, pair := range [][2]byte{{'r', 'e'}, {'v', 'e'}, {'l', 'l'}} {
		if n, ok := foldEq(s, q, pair[0]); ok {
			if m, ok := foldEq(s, q+n, pair[1]); ok {
				return q + n + m, true
			}
		}
	}
	return 0, false
}

func (f cl100kFinder) at(s string, p int) int {
	if e, ok := contraction(s, p); ok {
		return e
	}
	c, n, cls := charAt(s, p)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if cls == clsLetter {
		return runOf(s, p+n, clsLetter)
	}
	if cls != clsNumber && c != '\r' && c != '\n' && p+n < len(s) {
		if _, m, next := charAt(s, p+n); next == clsLetter {
			return runOf(s, p+n+m, clsLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if cls == clsNumber {
		e := p + n
		for k := 1; k < f.maxDigits && e < len(s); k++ {
			_, m, next := charAt(s, e)
			if next != clsNumber {
				break
			}
			e += m
		}
		return e
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := p
	if c == ' ' && p+1 < len(s) {
		if _, _, next := charAt(s, p+1); next == clsOther {
			start = p + 1
		}
	}
	if _, _, k := charAt(s, start); k == clsOther {
		e := runOf(s, start, clsOther)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	// \s*[\r\n]+ : the whitespace run up to its last \r or \n.
	q, lastNL := p, -1
	for q < len(s) {
		c, m := decodeAt(s, q)
		if props(c)&pSpace == 0 {
			break
		}
		if c == '\r' || c == '\n' {
			lastNL = q
		}
		q += m
	}
	if lastNL >= 0 {
		return lastNL + 1
	}
	e, _ := wsRule(s, p)
	return e
}
