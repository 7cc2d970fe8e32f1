package tokenize

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// Regular expressions of Split pre-tokenizers and Replace normalizers/decoders. Rust compiles
// them with Oniguruma, whose \s, \w, \d, \p{L}, \p{N} are Unicode classes and which supports
// look-around. We use, in order:
//  1. hand-written matchers for the GPT-2 and cl100k/Llama-3/Qwen2 patterns (fast, exact);
//  2. for patterns of the form `X|\s+(?!\S)|\s+` (the usual byte-level BPE idiom), Go's regexp for
//     X anchored at each position, followed by the whitespace rule written by hand;
//  3. Go's regexp for look-around free patterns, with the classes rewritten to onig's Unicode
//     sets;
//  4. github.com/dlclark/regexp2 (backtracking, .NET syntax) for the rest.

// GPT-2's pattern, also ByteLevel's built-in one.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

const (
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

const wsLookaheadSuffix = `|\s+(?!\S)|\s+`

func compileRegex(pat string) (finder, error) {
	switch pat {
	case gpt2Pattern:
		return gpt2Finder{}, nil
	case cl100kPattern:
		return cl100kFinder{maxDigits: 3}, nil
	case qwen2Pattern:
		return cl100kFinder{maxDigits: 1}, nil
	}
	if x, ok := strings.CutSuffix(pat, wsLookaheadSuffix); ok && !hasLookaround(x) {
		if tr, anchors, ok := translateRegex(x, false); ok && !anchors {
			if re, err := regexp.Compile(`\A(?:` + tr + `)`); err == nil {
				return wsLookaheadFinder{re}, nil
			}
		}
	}
	if !hasLookaround(pat) {
		if tr, _, ok := translateRegex(pat, false); ok {
			if re, err := regexp.Compile(tr); err == nil {
				return goRegexFinder{re}, nil
			}
		}
	}
	tr, _, ok := translateRegex(pat, true)
	if !ok {
		tr = pat
	}
	re, err := regexp2.Compile(tr, regexp2.Multiline)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pat, err)
	}
	return regexp2Finder{re}, nil
}

func hasLookaround(p string) bool {
	for _, s := range []string{"(?=", "(?!", "(?<=", "(?<!", "(?>", `\K`, `\G`} {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// classBody returns a character-class body (without brackets) listing the code points for which
// in is true.
func classBody(in func(rune) bool) string {
	var b strings.Builder
	on := false
	var lo rune
	for c := rune(0); c <= utf8.MaxRune+1; c++ {
		has := c <= utf8.MaxRune && (c < 0xD800 || c > 0xDFFF) && in(c)
		if has && !on {
			lo, on = c, true
		} else if !has && on {
			if lo == c-1 {
				fmt.Fprintf(&b, `\x{%X}`, lo)
			} else {
				fmt.Fprintf(&b, `\x{%X}-\x{%X}`, lo, c-1)
			}
			on = false
		}
	}
	return b.String()
}

// onigCategory reports whether c is in general category cat ("Lu", or "L" for all letters) as
// onig (Unicode 16) sees it.
func onigCategory(c rune, cat string) bool {
	i := sort.Search(len(categoryOverrides), func(i int) bool { return categoryOverrides[i].hi >= c })
	if i < len(categoryOverrides) && categoryOverrides[i].lo <= c {
		o := categoryOverrides[i].cat
		return o != "" && strings.HasPrefix(o, cat)
	}
	t, ok := unicode.Categories[cat]
	return ok && unicode.Is(t, c)
}

// namedClass returns the predicate of \p{name} when it is a general category (onig's Unicode 16
// view), nil for other names (scripts...), which are left to the engine.
func namedClass(name string) func(rune) bool {
	switch name {
	case "L":
		return func(c rune) bool { return props(c)&pLetter != 0 }
	case "N":
		return func(c rune) bool { return props(c)&pNumber != 0 }
	}
	if _, ok := unicode.Categories[name]; ok && len(name) <= 2 {
		return func(c rune) bool { return onigCategory(c, name) }
	}
	return nil
}

const spaceBody = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

// translateRegex rewrites an onig pattern with onig's class semantics made explicit, for Go's
// regexp (r2 false) or regexp2 (r2 true). anchors reports ^, $ or word boundaries; ok is false
// when the target engine cannot express the pattern the same way.
func translateRegex(p string, r2 bool) (out string, anchors, ok bool) {
	var b strings.Builder
	bodies := map[string]string{}
	body := func(key string, in func(rune) bool) string {
		s, ok := bodies[key]
		if !ok {
			s = classBody(in)
			bodies[key] = s
		}
		return s
	}
	word := func() string { return body("w", func(c rune) bool { return props(c)&pOnigWord != 0 }) }
	digit := func() string { return body("d", func(c rune) bool { return props(c)&pOnigDigit != 0 }) }
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			e := p[i+1]
			i++
			switch e {
			case 's':
				b.WriteString(wrap(spaceBody, inClass, false))
			case 'd':
				b.WriteString(wrap(digit(), inClass, false))
			case 'w':
				b.WriteString(wrap(word(), inClass, false))
			case 'S', 'D', 'W':
				if inClass {
					if !r2 {
						return "", false, false
					}
					b.WriteByte('\\') // regexp2's own (Unicode) class
					b.WriteByte(e)
					continue
				}
				switch e {
				case 'S':
					b.WriteString(wrap(spaceBody, false, true))
				case 'D':
					b.WriteString(wrap(digit(), false, true))
				default:
					b.WriteString(wrap(word(), false, true))
				}
			case 'h':
				b.WriteString(wrap(`0-9a-fA-F`, inClass, false))
			case 'H':
				if inClass {
					return "", false, false
				}
				b.WriteString(`[^0-9a-fA-F]`)
			case 'b', 'B':
				if inClass || !r2 {
					return "", false, false
				}
				anchors = true
				w := "[" + word() + "]"
				if e == 'b' {
					b.WriteString(`(?:(?<=` + w + `)(?!` + w + `)|(?<!` + w + `)(?=` + w + `))`)
				} else {
					b.WriteString(`(?:(?<=` + w + `)(?=` + w + `)|(?<!` + w + `)(?!` + w + `))`)
				}
			case 'p', 'P':
				name, n, ok := propName(p[i+1:])
				if !ok {
					return "", false, false
				}
				i += n
				neg := e == 'P'
				if strings.HasPrefix(name, "^") {
					neg, name = !neg, name[1:]
				}
				in := namedClass(name)
				switch {
				case in != nil && (!neg || !inClass):
					b.WriteString(wrap(body("p"+name, in), inClass, neg))
				case neg:
					b.WriteString(`\P{` + name + `}`)
				default:
					b.WriteString(`\p{` + name + `}`)
				}
			case 'u':
				if i+4 >= len(p) {
					return "", false, false
				}
				b.WriteString(`\x{` + p[i+1:i+5] + `}`)
				i += 4
			case 'e':
				b.WriteString(`\x1B`)
			case 'A', 'z', 'n', 'r', 't', 'f', 'v', 'a', 'x', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\', '/', '-', ' ', '\'', '"', '#', '&', '~', ':', ',', '<', '>', '=', '!', '@', '%', '`', ';', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				if !r2 {
					return "", false, false // \Z, \R, \X, back-references...
				}
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '[' && inClass:
			return "", false, false // nested classes / set operations
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case c == '&' && inClass && i+1 < len(p) && p[i+1] == '&':
			return "", false, false
		case (c == '^' || c == '$') && !inClass:
			anchors = true
			if r2 {
				b.WriteByte(c) // Multiline option
			} else {
				b.WriteString(`(?m:` + string(c) + `)`)
			}
		case c == '{' && !inClass && i+1 < len(p) && p[i+1] == ',':
			b.WriteString("{0")
		case c == '(' && !inClass && i+2 < len(p) && p[i+1] == '?':
			// Onig's (?m) is dot-all: Go's and .NET's (?s).
			j := i + 2
			for j < len(p) && strings.IndexByte("imsx-", p[j]) >= 0 {
				j++
			}
			if j < len(p) && (p[j] == ':' || p[j] == ')') && j > i+2 {
				flags := strings.ReplaceAll(p[i+2:j], "m", "s")
				if strings.Contains(flags, "x") {
					return "", false, false
				}
				b.WriteString("(?" + flags)
				i = j - 1
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), anchors, !inClass
}

func wrap(body string, inClass, neg bool) string {
	if inClass {
		return body
	}
	if neg {
		return "[^" + body + "]"
	}
	return "[" + body + "]"
}

// propName reads {Name} or a single letter after \p.
func propName(s string) (string, int, bool) {
	if s == "" {
		return "", 0, false
	}
	if s[0] != '{' {
		return s[:1], 1, true
	}
	j := strings.IndexByte(s, '}')
	if j < 0 {
		return "", 0, false
	}
	return s[1:j], j + 1, true
}

// goRegexFinder iterates a Go regexp; Go's FindAll skips empty matches that abut the previous
// match exactly like onig's find_iter.
type goRegexFinder struct{ re *regexp.Regexp }

func (g goRegexFinder) findAll(s string, emit func(int, int)) error {
	for _, m := range g.re.FindAllStringIndex(s, -1) {
		emit(m[0], m[1])
	}
	return nil
}

// wsLookaheadFinder runs `X|\s+(?!\S)|\s+`: X anchored at each position, else the whitespace rule.
type wsLookaheadFinder struct{ x *regexp.Regexp }

func (w wsLookaheadFinder) findAll(s string, emit func(int, int)) error {
	iterFind(s, func(s string, p int) (int, bool) {
		if m := w.x.FindStringIndex(s[p:]); m != nil {
			return p + m[1], true
		}
		return wsRule(s, p)
	}, emit)
	return nil
}

// wsRule matches `\s+(?!\S)|\s+` at p.
func wsRule(s string, p int) (int, bool) {
	q := p
	last := p
	for q < len(s) {
		c, n := decodeAt(s, q)
		if props(c)&pSpace == 0 {
			break
		}
		last = q
		q += n
	}
	if q == p {
		return 0, false
	}
	if q == len(s) || last == p {
		return q, true
	}
	return last, true
}

func decodeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// iterFind drives a matcher that reports the end of the match starting at p (if any) with
// onig's search and find_iter rules.
func iterFind(s string, at func(s string, p int) (int, bool), emit func(int, int)) {
	lastEnd, lastMatchEnd := 0, -1
	for lastEnd <= len(s) {
		start, end, found := -1, -1, false
		for p := lastEnd; p <= len(s); {
			if e, ok := at(s, p); ok {
				start, end, found = p, e, true
				break
			}
			if p == len(s) {
				break
			}
			_, n := decodeAt(s, p)
			p += n
		}
		if !found {
			return
		}
		if start == end && lastMatchEnd == end {
			if lastEnd >= len(s) {
				return
			}
			_, n := decodeAt(s, lastEnd)
			lastEnd += n
			continue
		}
		lastEnd, lastMatchEnd = end, end
		emit(start, end)
	}
}

// regexp2Finder runs a regexp2 pattern on runes, converting rune positions to byte offsets.
type regexp2Finder struct{ re *regexp2.Regexp }

func (r regexp2Finder) findAll(s string, emit func(int, int)) error {
	runes := []rune(s)
	byteAt := make([]int, len(runes)+1)
	i := 0
	for k := range s {
		byteAt[i] = k
		i++
	}
	byteAt[len(runes)] = len(s)
	lastEnd, lastMatchEnd := 0, -1
	for lastEnd <= len(runes) {
		m, err := r.re.FindRunesMatchStartingAt(runes, lastEnd)
		if err != nil {
			return fmt.Errorf("tokenize: regex: %w", err)
		}
		if m == nil {
			return nil
		}
		st, en := m.Index, m.Index+m.Length
		if st == en && lastMatchEnd == en {
			lastEnd++
			continue
		}
		lastEnd, lastMatchEnd = en, en
		emit(byteAt[st], byteAt[en])
	}
	return nil
}
