package tokenize

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"unicode"
)

// Every code point against what the reference library answered (probe-unicode.js): character
// classes, general categories and the per-character output of each normalizer.

type unicodeOracle struct {
	Sets       map[string][][2]rune         `json:"sets"`
	Categories map[string][][2]rune         `json:"categories"`
	Maps       map[string]map[string]string `json:"maps"`
}

func loadUnicodeOracle(t *testing.T) *unicodeOracle {
	b, err := readMaybeGz("testdata/unicode_oracle.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	var o unicodeOracle
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

func inRangeList(rs [][2]rune, c rune) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i][1] >= c })
	return i < len(rs) && rs[i][0] <= c
}

func scalarValues(yield func(rune) bool) {
	for c := rune(0); c <= unicode.MaxRune; c++ {
		if c >= 0xD800 && c <= 0xDFFF {
			continue
		}
		if !yield(c) {
			return
		}
	}
}

func TestUnicodeClasses(t *testing.T) {
	o := loadUnicodeOracle(t)
	bits := map[string]uint32{
		"onig_space": pSpace, "rust_whitespace": pSpace, "regex_space": pSpace,
		"onig_letter": pLetter, "onig_number": pNumber, "onig_word": pOnigWord, "onig_digit": pOnigDigit,
		"rust_numeric": pNumeric, "punctuation": pPunct, "regex_word": pRegexWord,
		"bert_clean_removed": pBertRemoved, "bert_clean_space": pBertSpace, "bert_chinese": pChinese,
		"strip_accents_removed": pCombiningMark,
	}
	for name, rs := range o.Sets {
		bit, ok := bits[name]
		if !ok {
			t.Errorf("no property for oracle set %s", name)
			continue
		}
		bad := 0
		for c := range scalarValues {
			if inRangeList(rs, c) != hasProp(c, bit) {
				if bad < 5 {
					t.Errorf("%s: U+%04X: reference %v", name, c, inRangeList(rs, c))
				}
				bad++
			}
		}
		t.Logf("%s: %d code points differ", name, bad)
	}
	for cat, rs := range o.Categories {
		bad := 0
		for c := range scalarValues {
			if inRangeList(rs, c) != onigCategory(c, cat) {
				if bad < 5 {
					t.Errorf("\\p{%s}: U+%04X: reference %v", cat, c, inRangeList(rs, c))
				}
				bad++
			}
		}
	}
}

func TestUnicodeNormalizersPerCharacter(t *testing.T) {
	o := loadUnicodeOracle(t)
	norms := map[string]normalizer{
		"nfd": unicodeNormalizer{false, false}, "nfkd": unicodeNormalizer{true, false},
		"nfc": unicodeNormalizer{false, true}, "nfkc": unicodeNormalizer{true, true},
		"lowercase":  lowercaseNormalizer{},
		"bert_strip": &bertNormalizer{stripAccents: true},
		"nmt":        nmtNormalizer{},
	}
	for name, m := range o.Maps {
		n, ok := norms[name]
		if !ok {
			t.Errorf("no normalizer for oracle map %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			bad := 0
			sc := &scratch{}
			step := rune(1)
			if testing.Short() || raceEnabled {
				step = 7 // a sample keeps -race runs quick; the full check runs without -race
			}
			for c := rune(0); c <= unicode.MaxRune; c += step {
				if c >= 0xD800 && c <= 0xDFFF {
					continue
				}
				want, ok := m[strconv.Itoa(int(c))]
				if !ok {
					want = string(c)
				}
				ns := newNstr(string(c), nil)
				if err := n.normalize(&ns, sc); err != nil {
					t.Fatal(err)
				}
				if ns.s != want {
					if bad < 5 {
						t.Errorf("U+%04X: got %+q, reference %+q", c, ns.s, want)
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d code points differ", bad)
			}
		})
	}
}

// Normalization of sequences: canonical ordering, composition across marks, Hangul.
func TestUnicodeNormalizeSequences(t *testing.T) {
	cases := []struct{ in, nfd, nfc string }{
		{"e\u0301", "e\u0301", "\u00e9"},
		{"a\u0301\u0316", "a\u0316\u0301", "\u00e1\u0316"},
		{"\u1100\u1161\u11a8", "\u1100\u1161\u11a8", "\uac01"},
		{"\uac00\u11a7", "\u1100\u1161\u11a7", "\uac00\u11a7"},
		{"\u0041\u030a\u0301", "A\u030a\u0301", "\u01fa"},
		{"\U00011935\U00011930", "\U00011935\U00011930", "\U00011935\U00011930"}, // Unicode 13: not in 9.0
		{"\u1ec7", "e\u0323\u0302", "\u1ec7"},
	}
	for _, c := range cases {
		for _, f := range []struct {
			compose bool
			want    string
		}{{false, c.nfd}, {true, c.nfc}} {
			n := newNstr(c.in, nil)
			if err := n.normalizeForm(false, f.compose); err != nil {
				t.Fatal(err)
			}
			if n.s != f.want {
				t.Errorf("%+q compose=%v: got %+q want %+q", c.in, f.compose, n.s, f.want)
			}
			if len(n.align) != len(n.s) {
				t.Errorf("%+q: %d alignments for %d bytes", c.in, len(n.align), len(n.s))
			}
		}
	}
	_ = fmt.Sprint
}
