package tokenize

import (
	"encoding/json"
	"fmt"
	"strings"
)

// normalizer transforms the normalized text of a piece while keeping its alignments.
type normalizer interface {
	normalize(n *nstr, sc *scratch) error
}

type normalizerSeq []normalizer

func (s normalizerSeq) normalize(n *nstr, sc *scratch) error {
	for _, x := range s {
		if err := x.normalize(n, sc); err != nil {
			return err
		}
	}
	return nil
}

// bertNormalizer is BertNormalizer.
type bertNormalizer struct {
	cleanText, chinese, stripAccents, lowercase bool
}

func (b *bertNormalizer) normalize(n *nstr, sc *scratch) error {
	if done := b.normalizeASCII(n); done {
		return nil
	}
	if b.cleanText {
		if err := n.filter(func(c rune) bool { return props(c)&pBertRemoved == 0 }); err != nil {
			return err
		}
		if err := n.mapRunes(func(c rune) rune {
			if props(c)&pBertSpace != 0 {
				return ' '
			}
			return c
		}); err != nil {
			return err
		}
	}
	if b.chinese {
		if err := bertChinese(n); err != nil {
			return err
		}
	}
	if b.stripAccents {
		if err := n.normalizeForm(false, false); err != nil {
			return err
		}
		if err := n.filter(func(c rune) bool { return props(c)&pNonSpacingMark == 0 }); err != nil {
			return err
		}
	}
	if b.lowercase {
		return n.lowercase()
	}
	return nil
}

// normalizeASCII is the common case in one pass: ASCII text without characters to remove, where
// every step maps one byte to one byte (so the alignments do not move) and NFD is the identity.
func (b *bertNormalizer) normalizeASCII(n *nstr) bool {
	if !isASCII(n.s) {
		return false
	}
	if lo, hi, ok := n.fullNormRange(); !ok || lo != 0 || hi != len(n.s) {
		return false
	}
	change := false
	for i := 0; i < len(n.s); i++ {
		c := n.s[i]
		p := asciiProps[c]
		if b.cleanText && p&pBertRemoved != 0 {
			return false
		}
		if (b.cleanText && p&pBertSpace != 0 && c != ' ') || (b.lowercase && 'A' <= c && c <= 'Z') {
			change = true
		}
	}
	if !change {
		return true
	}
	buf := n.ar.bytes(len(n.s))[:len(n.s)]
	for i := 0; i < len(n.s); i++ {
		c := n.s[i]
		if b.cleanText && asciiProps[c]&pBertSpace != 0 {
			c = ' '
		}
		if b.lowercase && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	n.s = bytesToString(buf)
	return true
}

// bertChinese surrounds CJK ideographs with spaces.
func bertChinese(n *nstr) error {
	found := false
	for _, c := range n.s {
		if c >= 0x3400 && props(c)&pChinese != 0 {
			found = true
			break
		}
	}
	if !found {
		if lo, hi, ok := n.fullNormRange(); ok && lo == 0 && hi == len(n.s) {
			return nil
		}
	}
	dest := make([]change, 0, len(n.s)+8)
	for _, c := range n.s {
		if props(c)&pChinese != 0 {
			dest = append(dest, change{' ', 0}, change{c, 1}, change{' ', 1})
		} else {
			dest = append(dest, change{c, 0})
		}
	}
	return n.transformAll(dest, 0)
}

type unicodeNormalizer struct{ compat, compose bool }

func (u unicodeNormalizer) normalize(n *nstr, _ *scratch) error {
	return n.normalizeForm(u.compat, u.compose)
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(n *nstr, _ *scratch) error { return n.lowercase() }

type stripNormalizer struct{ left, right bool }

func (s stripNormalizer) normalize(n *nstr, _ *scratch) error {
	if s.left && s.right {
		return n.lrstrip(true, true)
	}
	if s.left {
		if err := n.lrstrip(true, false); err != nil {
			return err
		}
	}
	if s.right {
		return n.lrstrip(false, true)
	}
	return nil
}

type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(n *nstr, _ *scratch) error {
	return n.filter(func(c rune) bool { return props(c)&pCombiningMark == 0 })
}

type nmtNormalizer struct{}

func (nmtNormalizer) normalize(n *nstr, _ *scratch) error {
	if err := n.filter(func(c rune) bool {
		switch {
		case c >= 0x1 && c <= 0x8, c == 0xB, c >= 0xE && c <= 0x1F, c == 0x7F, c == 0x8F, c == 0x9F:
			return false
		}
		return true
	}); err != nil {
		return err
	}
	return n.mapRunes(func(c rune) rune {
		switch {
		case c == 0x9, c == 0xA, c == 0xC, c == 0xD, c == 0x1680, c >= 0x200B && c <= 0x200F,
			c == 0x2028, c == 0x2029, c == 0x2581, c == 0xFEFF, c == 0xFFFD:
			return ' '
		}
		return c
	})
}

type replaceNormalizer struct {
	pat     pattern
	content string
}

func (r *replaceNormalizer) normalize(n *nstr, sc *scratch) error {
	ms, err := r.pat.findMatches(n.s, sc.matches[:0])
	sc.matches = ms[:0]
	if err != nil {
		return err
	}
	n.replaceMatches(ms, r.content)
	return nil
}

type prependNormalizer struct{ prepend string }

func (p prependNormalizer) normalize(n *nstr, _ *scratch) error {
	if n.empty() {
		return nil
	}
	return n.prepend(p.prepend)
}

// byteLevelNormalizer is the ByteLevel normalizer: every byte becomes its byte-level character.
type byteLevelNormalizer struct{}

func (byteLevelNormalizer) normalize(n *nstr, _ *scratch) error {
	if n.empty() {
		return nil
	}
	return byteLevelTransform(n)
}

// buildNormalizer reads one normalizer object of tokenizer.json.
func buildNormalizer(raw json.RawMessage) (normalizer, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	switch head.Type {
	case "BertNormalizer":
		var c struct {
			CleanText          *bool `json:"clean_text"`
			HandleChineseChars *bool `json:"handle_chinese_chars"`
			StripAccents       *bool `json:"strip_accents"`
			Lowercase          *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("BertNormalizer: %w", err)
		}
		b := &bertNormalizer{cleanText: boolOr(c.CleanText, true), chinese: boolOr(c.HandleChineseChars, true), lowercase: boolOr(c.Lowercase, true)}
		// strip_accents null follows lowercase.
		b.stripAccents = boolOr(c.StripAccents, b.lowercase)
		return b, nil
	case "NFD":
		return unicodeNormalizer{false, false}, nil
	case "NFKD":
		return unicodeNormalizer{true, false}, nil
	case "NFC":
		return unicodeNormalizer{false, true}, nil
	case "NFKC":
		return unicodeNormalizer{true, true}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "Strip":
		var c struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Strip: %w", err)
		}
		return stripNormalizer{c.Left, c.Right}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Nmt":
		return nmtNormalizer{}, nil
	case "Replace":
		var c struct {
			Pattern json.RawMessage `json:"pattern"`
			Content string          `json:"content"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		p, err := buildPattern(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return &replaceNormalizer{p, c.Content}, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Prepend: %w", err)
		}
		return prependNormalizer{c.Prepend}, nil
	case "Precompiled":
		var c struct {
			Charsmap *string `json:"precompiled_charsmap"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Precompiled: %w", err)
		}
		if c.Charsmap == nil {
			return nil, fmt.Errorf("Precompiled: missing precompiled_charsmap")
		}
		return newPrecompiled(*c.Charsmap)
	case "ByteLevel":
		return byteLevelNormalizer{}, nil
	case "Sequence":
		var c struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("normalizer Sequence: %w", err)
		}
		seq := make(normalizerSeq, 0, len(c.Normalizers))
		for i, r := range c.Normalizers {
			x, err := buildNormalizer(r)
			if err != nil {
				return nil, fmt.Errorf("normalizer Sequence[%d]: %w", i, err)
			}
			seq = append(seq, x)
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("normalizer without a type")
	}
	return nil, fmt.Errorf("unsupported normalizer %q", head.Type)
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// buildPattern reads a {"String": s} or {"Regex": r} pattern of Replace or Split.
func buildPattern(raw json.RawMessage) (pattern, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	switch {
	case p.String != nil:
		if *p.String == "" {
			return emptyStringPattern{}, nil
		}
		return literalPattern(*p.String), nil
	case p.Regex != nil:
		f, err := compileRegex(*p.Regex)
		if err != nil {
			return nil, err
		}
		return regexPattern{f}, nil
	}
	return nil, fmt.Errorf("pattern must be {\"String\": ...} or {\"Regex\": ...}")
}

// literalPattern matches a fixed string (Rust escapes it into a regex; non-overlapping
// left-to-right matches are the same thing).
type literalPattern string

func (l literalPattern) findMatches(s string, out []match) ([]match, error) {
	if s == "" {
		return append(out, match{0, 0, false}), nil
	}
	prev := 0
	for i := 0; i+len(l) <= len(s); {
		j := strings.Index(s[i:], string(l))
		if j < 0 {
			break
		}
		j += i
		if prev != j {
			out = append(out, match{prev, j, false})
		}
		out = append(out, match{j, j + len(l), true})
		prev = j + len(l)
		i = prev
	}
	if prev != len(s) {
		out = append(out, match{prev, len(s), false})
	}
	return out, nil
}
