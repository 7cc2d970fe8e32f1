package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Parity with the shared Python fixtures (testdata/fixtures, generated with tokenizers 0.23.2).

const fixturesDir = "../testdata/fixtures"

func loadTokenizer(t testing.TB, path string) *Tokenizer {
	t.Helper()
	tk, err := FromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return tk
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// tally counts identical results per field and reports them.
type tally struct {
	name   string
	fields map[string][2]int // field -> (equal, total)
	fails  []string
}

func newTally(name string) *tally { return &tally{name: name, fields: map[string][2]int{}} }

func (ta *tally) check(field, label string, got, want any) bool {
	c := ta.fields[field]
	c[1]++
	ok := reflect.DeepEqual(got, want) || (isEmptySlice(got) && isEmptySlice(want))
	if ok {
		c[0]++
	} else if len(ta.fails) < 15 {
		ta.fails = append(ta.fails, fmt.Sprintf("%s %s:\n  got  %v\n  want %v", field, label, got, want))
	}
	ta.fields[field] = c
	return ok
}

func isEmptySlice(v any) bool {
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Slice && r.Len() == 0
}

func (ta *tally) report(t *testing.T) {
	t.Helper()
	keys := make([]string, 0, len(ta.fields))
	for k := range ta.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	bad := false
	for _, k := range keys {
		c := ta.fields[k]
		fmt.Fprintf(&b, " %s %d/%d", k, c[0], c[1])
		bad = bad || c[0] != c[1]
	}
	t.Logf("parity %s:%s", ta.name, b.String())
	for _, f := range ta.fails {
		t.Log(f)
	}
	if bad {
		t.Errorf("%s: not all results identical", ta.name)
	}
}

func offsetsOf(o []Offset) [][2]int {
	out := make([][2]int, len(o))
	for i, x := range o {
		out[i] = [2]int{x.Start, x.End}
	}
	return out
}

func ints32(a []int32) []int {
	out := make([]int, len(a))
	for i, x := range a {
		out[i] = int(x)
	}
	return out
}

func ints8(a []uint8) []int {
	out := make([]int, len(a))
	for i, x := range a {
		out[i] = int(x)
	}
	return out
}

// wordIDs converts -1 to nil as in the JSON goldens.
func wordIDs(a []int) []*int {
	out := make([]*int, len(a))
	for i := range a {
		if a[i] >= 0 {
			v := a[i]
			out[i] = &v
		}
	}
	return out
}

func derefInts(a []*int) []int {
	out := make([]int, len(a))
	for i, p := range a {
		out[i] = -1
		if p != nil {
			out[i] = *p
		}
	}
	return out
}

type pyGolden struct {
	VocabSize int `json:"vocab_size"`
	Single    []struct {
		Text               string   `json:"text"`
		IDs                []int    `json:"ids"`
		Tokens             []string `json:"tokens"`
		Offsets            [][2]int `json:"offsets"`
		TypeIDs            []int    `json:"type_ids"`
		AttentionMask      []int    `json:"attention_mask"`
		SpecialTokensMask  []int    `json:"special_tokens_mask"`
		WordIDs            []*int   `json:"word_ids"`
		Decoded            string   `json:"decoded"`
		DecodedKeepSpecial string   `json:"decoded_keep_special"`
	} `json:"single"`
	Pairs []struct {
		Text     string   `json:"text"`
		TextPair string   `json:"text_pair"`
		IDs      []int    `json:"ids"`
		Tokens   []string `json:"tokens"`
		Offsets  [][2]int `json:"offsets"`
		TypeIDs  []int    `json:"type_ids"`
	} `json:"pairs"`
	Batch struct {
		MaxLength     int        `json:"max_length"`
		Texts         []string   `json:"texts"`
		IDs           [][]int    `json:"ids"`
		AttentionMask [][]int    `json:"attention_mask"`
		TypeIDs       [][]int    `json:"type_ids"`
		Offsets       [][][2]int `json:"offsets"`
	} `json:"batch"`
}

func TestPythonFixtures(t *testing.T) {
	var goldens map[string]pyGolden
	readJSON(t, filepath.Join(fixturesDir, "tokenizers/golden.json"), &goldens)
	for _, kind := range []string{"wordpiece", "bytelevel_bpe", "unigram"} {
		t.Run(kind, func(t *testing.T) {
			g := goldens[kind]
			tk := loadTokenizer(t, filepath.Join(fixturesDir, "tokenizers", kind+".json"))
			ta := newTally(kind)
			opts := Options{AddSpecialTokens: true}
			for _, s := range g.Single {
				e, err := tk.Encode(s.Text, opts)
				if err != nil {
					t.Fatalf("%q: %v", s.Text, err)
				}
				l := fmt.Sprintf("%q", s.Text)
				ta.check("ids", l, ints32(e.IDs), s.IDs)
				ta.check("tokens", l, e.Tokens, s.Tokens)
				ta.check("offsets", l, offsetsOf(e.Offsets), s.Offsets)
				ta.check("type_ids", l, ints32(e.TypeIDs), s.TypeIDs)
				ta.check("attention_mask", l, ints8(e.AttentionMask), s.AttentionMask)
				ta.check("special_tokens_mask", l, ints8(e.SpecialTokensMask), s.SpecialTokensMask)
				ta.check("word_ids", l, e.WordIDs, derefInts(s.WordIDs))
				d, err := tk.Decode(e.IDs, true)
				if err != nil {
					t.Fatal(err)
				}
				ta.check("decoded", l, d, s.Decoded)
				d, err = tk.Decode(e.IDs, false)
				if err != nil {
					t.Fatal(err)
				}
				ta.check("decoded_keep_special", l, d, s.DecodedKeepSpecial)
			}
			for _, p := range g.Pairs {
				e, err := tk.EncodePair(p.Text, p.TextPair, opts)
				if err != nil {
					t.Fatal(err)
				}
				l := fmt.Sprintf("%q+%q", p.Text, p.TextPair)
				ta.check("pair_ids", l, ints32(e.IDs), p.IDs)
				ta.check("pair_tokens", l, e.Tokens, p.Tokens)
				ta.check("pair_offsets", l, offsetsOf(e.Offsets), p.Offsets)
				ta.check("pair_type_ids", l, ints32(e.TypeIDs), p.TypeIDs)
			}
			b := g.Batch
			inputs := make([]Input, len(b.Texts))
			for i, s := range b.Texts {
				inputs[i] = Input{Text: s}
			}
			padID, _ := tk.TokenToID("[PAD]")
			if kind == "unigram" {
				padID, _ = tk.TokenToID("<pad>")
			}
			encs, err := tk.EncodeBatch(inputs, Options{
				AddSpecialTokens: true,
				Truncation:       &Truncation{MaxLength: b.MaxLength},
				Padding:          &Padding{PadID: padID},
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range encs {
				l := fmt.Sprintf("%q", b.Texts[i])
				ta.check("batch_ids", l, ints32(e.IDs), b.IDs[i])
				ta.check("batch_attention_mask", l, ints8(e.AttentionMask), b.AttentionMask[i])
				ta.check("batch_type_ids", l, ints32(e.TypeIDs), b.TypeIDs[i])
				ta.check("batch_offsets", l, offsetsOf(e.Offsets), b.Offsets[i])
			}
			ta.report(t)
		})
	}
}

func TestRealTokenizerFixtures(t *testing.T) {
	for _, name := range []string{"bert-base-uncased", "gpt2"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(fixturesDir, "real-tokenizers", name)
			tk := loadTokenizer(t, filepath.Join(dir, "tokenizer.json"))
			var g struct {
				Single []struct {
					Text    string   `json:"text"`
					IDs     []int    `json:"ids"`
					Offsets [][2]int `json:"offsets"`
					TypeIDs []int    `json:"type_ids"`
					Decoded string   `json:"decoded"`
				} `json:"single"`
				Truncate32 []struct {
					Text string `json:"text"`
					IDs  []int  `json:"ids"`
				} `json:"truncate_32"`
			}
			readJSON(t, filepath.Join(dir, "golden.json"), &g)
			ta := newTally(name)
			opts := Options{AddSpecialTokens: true}
			for _, s := range g.Single {
				e, err := tk.Encode(s.Text, opts)
				if err != nil {
					t.Fatalf("%q: %v", s.Text, err)
				}
				l := fmt.Sprintf("%q", s.Text)
				ta.check("ids", l, ints32(e.IDs), s.IDs)
				ta.check("offsets", l, offsetsOf(e.Offsets), s.Offsets)
				ta.check("type_ids", l, ints32(e.TypeIDs), s.TypeIDs)
				d, err := tk.Decode(e.IDs, true)
				if err != nil {
					t.Fatal(err)
				}
				ta.check("decoded", l, d, s.Decoded)
			}
			for _, s := range g.Truncate32 {
				e, err := tk.Encode(s.Text, Options{AddSpecialTokens: true, Truncation: &Truncation{MaxLength: 32}})
				if err != nil {
					t.Fatal(err)
				}
				ta.check("truncate_32", fmt.Sprintf("%q", s.Text), ints32(e.IDs), s.IDs)
			}
			ta.report(t)
		})
	}
}
