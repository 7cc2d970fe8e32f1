package tokenize

import (
	"fmt"
	"unicode/utf8"
)

// match is one piece of a pattern search: the pieces cover the searched string in order, and
// isMatch tells the pattern matches from the text between them (Rust's Vec<(Offsets, bool)>).
type match struct {
	start, end int
	isMatch    bool
}

// pattern is Rust's Pattern trait.
type pattern interface {
	findMatches(s string, out []match) ([]match, error)
}

// runePattern matches single characters (Rust's impl Pattern for Fn(char) -> bool); consecutive
// matching characters are separate matches.
type runePattern func(rune) bool

func (p runePattern) findMatches(s string, out []match) ([]match, error) {
	if s == "" {
		return append(out, match{0, 0, false}), nil
	}
	last := 0
	for i, c := range s {
		if p(c) {
			if last < i {
				out = append(out, match{last, i, false})
			}
			end := i + utf8.RuneLen(c)
			out = append(out, match{i, end, true})
			last = end
		}
	}
	if last < len(s) {
		out = append(out, match{last, len(s), false})
	}
	return out, nil
}

// propPattern is a runePattern over a property bit, without the indirect call.
type propPattern uint32

func (p propPattern) findMatches(s string, out []match) ([]match, error) {
	if s == "" {
		return append(out, match{0, 0, false}), nil
	}
	last := 0
	for i := 0; i < len(s); {
		c, n := rune(s[i]), 1
		if c >= utf8.RuneSelf {
			c, n = utf8.DecodeRuneInString(s[i:])
		}
		if props(c)&uint32(p) != 0 {
			if last < i {
				out = append(out, match{last, i, false})
			}
			out = append(out, match{i, i + n, true})
			last = i + n
		}
		i += n
	}
	if last < len(s) {
		out = append(out, match{last, len(s), false})
	}
	return out, nil
}

// finder yields the successive non-overlapping matches of a regular expression with onig's
// find_iter semantics (an empty match right after the previous match is skipped).
type finder interface {
	findAll(s string, emit func(start, end int)) error
}

// regexPattern is Rust's impl Pattern for &SysRegex.
type regexPattern struct{ f finder }

func (p regexPattern) findMatches(s string, out []match) ([]match, error) {
	if s == "" {
		return append(out, match{0, 0, false}), nil
	}
	prev := 0
	err := p.f.findAll(s, func(start, end int) {
		if prev != start {
			out = append(out, match{prev, start, false})
		}
		out = append(out, match{start, end, true})
		prev = end
	})
	if err != nil {
		return out, err
	}
	if prev != len(s) {
		out = append(out, match{prev, len(s), false})
	}
	return out, nil
}

// invertPattern is Rust's Invert: the same pieces with isMatch flipped.
type invertPattern struct{ p pattern }

func (p invertPattern) findMatches(s string, out []match) ([]match, error) {
	n := len(out)
	out, err := p.p.findMatches(s, out)
	for i := n; i < len(out); i++ {
		out[i].isMatch = !out[i].isMatch
	}
	return out, err
}

// emptyStringPattern is Rust's &str pattern for "": one non-match covering (0, number of
// characters) — a character count used as a byte offset, as in Rust.
type emptyStringPattern struct{}

func (emptyStringPattern) findMatches(s string, out []match) ([]match, error) {
	return append(out, match{0, utf8.RuneCountInString(s), false}), nil
}

type splitBehavior uint8

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed", "removed":
		return splitRemoved, nil
	case "Isolated", "isolated":
		return splitIsolated, nil
	case "MergedWithPrevious", "merged_with_previous":
		return splitMergedWithPrevious, nil
	case "MergedWithNext", "merged_with_next":
		return splitMergedWithNext, nil
	case "Contiguous", "contiguous":
		return splitContiguous, nil
	}
	return 0, fmt.Errorf("unknown split behavior %q", s)
}

// splitPieces applies a behavior to the pieces of a pattern search (NormalizedString::split),
// in place. Pieces whose isMatch is true afterwards are to be removed.
func splitPieces(ms []match, behavior splitBehavior) []match {
	switch behavior {
	case splitIsolated:
		for i := range ms {
			ms[i].isMatch = false
		}
	case splitRemoved:
	case splitContiguous:
		out := ms[:0]
		prev := false
		for _, m := range ms {
			if m.isMatch == prev && len(out) > 0 {
				out[len(out)-1].end = m.end
			} else {
				out = append(out, match{m.start, m.end, false})
			}
			prev = m.isMatch
		}
		ms = out
	case splitMergedWithPrevious:
		out := ms[:0]
		prev := false
		for _, m := range ms {
			if m.isMatch && !prev && len(out) > 0 {
				out[len(out)-1].end = m.end
			} else {
				out = append(out, match{m.start, m.end, false})
			}
			prev = m.isMatch
		}
		ms = out
	case splitMergedWithNext:
		// Folded from the end, as in Rust.
		w := len(ms)
		prev := false
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.isMatch && !prev && w < len(ms) {
				ms[w].start = m.start
			} else {
				w--
				ms[w] = match{m.start, m.end, false}
			}
			prev = m.isMatch
		}
		ms = append(ms[:0], ms[w:]...)
	}
	return ms
}

// splitBy cuts n with a pattern and a behavior, appending the non-empty pieces to out.
func (n *nstr) splitBy(p pattern, behavior splitBehavior, sc *scratch, out []nstr) ([]nstr, error) {
	ms, err := p.findMatches(n.s, sc.matches[:0])
	sc.matches = ms[:0]
	if err != nil {
		return out, err
	}
	ms = splitPieces(ms, behavior)
	for _, m := range ms {
		if m.isMatch {
			continue
		}
		if m.start == m.end {
			continue // empty pieces are dropped by PreTokenizedString::split
		}
		piece, err := n.slice(m.start, m.end)
		if err != nil {
			return out, err
		}
		out = append(out, piece)
	}
	return out, nil
}
