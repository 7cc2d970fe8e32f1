package tokenize

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// preTokenizer splits each untokenized piece of a pretok further.
type preTokenizer interface {
	preTokenize(p *pretok, sc *scratch) error
}

type preTokenizerSeq []preTokenizer

func (s preTokenizerSeq) preTokenize(p *pretok, sc *scratch) error {
	for _, x := range s {
		if err := x.preTokenize(p, sc); err != nil {
			return err
		}
	}
	return nil
}

// patternSplit splits with a pattern and a behavior (most pre-tokenizers).
type patternSplit struct {
	pat      pattern
	behavior splitBehavior
}

func (s patternSplit) preTokenize(p *pretok, sc *scratch) error {
	return p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		return n.splitBy(s.pat, s.behavior, sc, out)
	})
}

// bertPreTokenizer splits on whitespace (removed) and punctuation (isolated).
type bertPreTokenizer struct{}

// In one pass: whitespace is dropped, each punctuation character is a piece, and the runs in
// between are pieces, which is what splitting on whitespace then on punctuation gives.
func (bertPreTokenizer) preTokenize(p *pretok, sc *scratch) error {
	return p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		s := n.s
		start := -1
		cut := func(a, b int) error {
			piece, err := n.slice(a, b)
			if err == nil {
				out = append(out, piece)
			}
			return err
		}
		for i := 0; i < len(s); {
			c, sz := rune(s[i]), 1
			if c >= utf8.RuneSelf {
				c, sz = utf8.DecodeRuneInString(s[i:])
			}
			pr := props(c)
			if pr&(pSpace|pPunct) != 0 {
				if start >= 0 {
					if err := cut(start, i); err != nil {
						return out, err
					}
					start = -1
				}
				if pr&pSpace == 0 {
					if err := cut(i, i+sz); err != nil {
						return out, err
					}
				}
			} else if start < 0 {
				start = i
			}
			i += sz
		}
		if start >= 0 {
			if err := cut(start, len(s)); err != nil {
				return out, err
			}
		}
		return out, nil
	})
}

// wordPattern is \w+|[^\w\s]+ of the Rust regex crate (Whitespace pre-tokenizer).
type wordPattern struct{}

func (wordPattern) findAll(s string, emit func(int, int)) error {
	for p := 0; p < len(s); {
		c, n := decodeAt(s, p)
		pr := props(c)
		if pr&pRegexWord == 0 && pr&pSpace != 0 {
			p += n
			continue
		}
		word := pr&pRegexWord != 0
		e := p + n
		for e < len(s) {
			c, m := decodeAt(s, e)
			q := props(c)
			if (q&pRegexWord != 0) != word || (!word && q&pSpace != 0) {
				break
			}
			e += m
		}
		emit(p, e)
		p = e
	}
	return nil
}

// metaspace is the Metaspace pre-tokenizer.
type metaspace struct {
	replacement rune
	rep         string
	prepend     prependScheme
	split       bool
}

type prependScheme uint8

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

func (m *metaspace) preTokenize(p *pretok, sc *scratch) error {
	return p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		ms, err := runePattern(func(c rune) bool { return c == ' ' }).findMatches(n.s, sc.matches[:0])
		sc.matches = ms[:0]
		if err != nil {
			return out, err
		}
		n.replaceMatches(ms, m.rep)
		r, _ := utf8.DecodeRuneInString(n.s)
		starts := n.s != "" && r == m.replacement
		switch m.prepend {
		case prependAlways:
			if !starts {
				if err := n.prepend(m.rep); err != nil {
					return out, err
				}
			}
		case prependFirst:
			if !starts && n.origStart == 0 {
				if err := n.prepend(m.rep); err != nil {
					return out, err
				}
			}
		}
		if m.split {
			return n.splitBy(runePattern(func(c rune) bool { return c == m.replacement }), splitMergedWithNext, sc, out)
		}
		if !n.empty() {
			out = append(out, n)
		}
		return out, nil
	})
}

// unicodeScripts splits where the (SentencePiece-fixed) script changes.
type unicodeScripts struct{}

func fixedScript(c rune) uint8 {
	if c == 0x30FC {
		return scriptHan
	}
	if c == ' ' {
		return scriptAny
	}
	s := uint8(props(c) >> scriptShift)
	if s == scriptHiragana || s == scriptKatakana {
		return scriptHan
	}
	return s
}

func (unicodeScripts) preTokenize(p *pretok, sc *scratch) error {
	return p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		cuts := []int{}
		last := -1 // None
		for i, c := range n.s {
			s := int(fixedScript(c))
			if s != scriptAny && last != scriptAny && last != s {
				cuts = append(cuts, i)
			}
			if s != scriptAny {
				last = s
			}
		}
		cuts = append(cuts, len(n.s))
		for k := 0; k+1 < len(cuts); k++ {
			if cuts[k] == cuts[k+1] {
				continue
			}
			piece, err := n.slice(cuts[k], cuts[k+1])
			if err != nil {
				return out, err
			}
			out = append(out, piece)
		}
		return out, nil
	})
}

// fixedLength cuts pieces into chunks of length characters.
type fixedLength struct{ length int }

func (f fixedLength) preTokenize(p *pretok, sc *scratch) error {
	return p.split(sc, func(n nstr, out []nstr) ([]nstr, error) {
		start, count := 0, 0
		for i := range n.s {
			if count == f.length {
				piece, err := n.slice(start, i)
				if err != nil {
					return out, err
				}
				out = append(out, piece)
				start, count = i, 0
			}
			count++
		}
		if start < len(n.s) {
			piece, err := n.slice(start, len(n.s))
			if err != nil {
				return out, err
			}
			out = append(out, piece)
		}
		return out, nil
	})
}

// buildPreTokenizer reads one pre_tokenizer object of tokenizer.json.
func buildPreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	switch head.Type {
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "Whitespace":
		return patternSplit{invertPattern{regexPattern{wordPattern{}}}, splitRemoved}, nil
	case "WhitespaceSplit":
		return patternSplit{propPattern(pSpace), splitRemoved}, nil
	case "Punctuation":
		var c struct {
			Behavior *string `json:"behavior"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Punctuation: %w", err)
		}
		b := splitIsolated
		if c.Behavior != nil {
			var err error
			if b, err = parseBehavior(*c.Behavior); err != nil {
				return nil, fmt.Errorf("Punctuation: %w", err)
			}
		}
		return patternSplit{propPattern(pPunct), b}, nil
	case "Digits":
		var c struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Digits: %w", err)
		}
		b := splitContiguous
		if c.Individual {
			b = splitIsolated
		}
		return patternSplit{propPattern(pNumeric), b}, nil
	case "CharDelimiterSplit":
		var c struct {
			Delimiter string `json:"delimiter"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("CharDelimiterSplit: %w", err)
		}
		d, n := utf8.DecodeRuneInString(c.Delimiter)
		if n == 0 || n != len(c.Delimiter) {
			return nil, fmt.Errorf("CharDelimiterSplit: delimiter must be one character, got %q", c.Delimiter)
		}
		return patternSplit{runePattern(func(r rune) bool { return r == d }), splitRemoved}, nil
	case "Split":
		var c struct {
			Pattern  json.RawMessage `json:"pattern"`
			Behavior string          `json:"behavior"`
			Invert   bool            `json:"invert"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		pat, err := buildPattern(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		b, err := parseBehavior(c.Behavior)
		if err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		if c.Invert {
			pat = invertPattern{pat}
		}
		return patternSplit{pat, b}, nil
	case "Metaspace":
		return buildMetaspace(raw)
	case "ByteLevel":
		var c struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("ByteLevel: %w", err)
		}
		return byteLevelPre{addPrefixSpace: boolOr(c.AddPrefixSpace, true), useRegex: boolOr(c.UseRegex, true)}, nil
	case "UnicodeScripts":
		return unicodeScripts{}, nil
	case "FixedLength":
		var c struct {
			Length *int `json:"length"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("FixedLength: %w", err)
		}
		l := 5
		if c.Length != nil {
			l = *c.Length
		}
		if l <= 0 {
			return nil, fmt.Errorf("FixedLength: length must be positive")
		}
		return fixedLength{l}, nil
	case "Sequence":
		var c struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("pre_tokenizer Sequence: %w", err)
		}
		seq := make(preTokenizerSeq, 0, len(c.PreTokenizers))
		for i, r := range c.PreTokenizers {
			x, err := buildPreTokenizer(r)
			if err != nil {
				return nil, fmt.Errorf("pre_tokenizer Sequence[%d]: %w", i, err)
			}
			seq = append(seq, x)
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("pre_tokenizer without a type")
	}
	return nil, fmt.Errorf("unsupported pre_tokenizer %q", head.Type)
}

// metaspaceConfig is shared by the pre-tokenizer and the decoder.
type metaspaceConfig struct {
	Replacement    string  `json:"replacement"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	PrependScheme  *string `json:"prepend_scheme"`
	Split          *bool   `json:"split"`
}

func parseMetaspace(raw json.RawMessage) (*metaspace, error) {
	var c metaspaceConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("Metaspace: %w", err)
	}
	r, n := utf8.DecodeRuneInString(c.Replacement)
	if n == 0 || n != len(c.Replacement) {
		return nil, fmt.Errorf("Metaspace: replacement must be one character, got %q", c.Replacement)
	}
	m := &metaspace{replacement: r, rep: c.Replacement, prepend: prependAlways, split: boolOr(c.Split, true)}
	if c.PrependScheme != nil {
		switch *c.PrependScheme {
		case "always":
		case "first":
			m.prepend = prependFirst
		case "never":
			m.prepend = prependNever
		default:
			return nil, fmt.Errorf("Metaspace: unknown prepend_scheme %q", *c.PrependScheme)
		}
	}
	if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		// Rust rejects add_prefix_space false unless prepend_scheme (default "always") is "never".
		if m.prepend != prependNever {
			return nil, fmt.Errorf("Metaspace: add_prefix_space does not match declared prepend_scheme")
		}
		m.prepend = prependNever
	}
	return m, nil
}

func buildMetaspace(raw json.RawMessage) (preTokenizer, error) { return parseMetaspace(raw) }
