package pipelines

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// New token-classification inputs beyond the fixture's golden: sub-words, accents, CJK,
// punctuation, unknown characters, empty and long texts (windows). Their reference outputs in
// testdata/ner_new_inputs.json come from testdata/gen_ner_golden.py, an independent numpy
// re-implementation of transformers' postprocess, fed with this package's tokenization (Rust
// tokenizers parity) and ONNX Runtime logits. Regenerate with:
//
//	INFERGO_GEN_NER=/tmp/ner_inputs.json go test -run TestDumpNERInputs ./pipelines/
//	/usr/bin/python3 pipelines/testdata/gen_ner_golden.py testdata/fixtures/tiny-bert-ner \
//	    /tmp/ner_inputs.json > pipelines/testdata/ner_new_inputs.json
//
// testdata/tjs_check.mjs cross-checks the "none" outputs with transformers.js (its own
// tokenizer and ONNX Runtime binding): 273 tokens agree, scores within 5.4e-7.
type nerCase struct {
	name   string
	text   string
	maxLen int // window length; 0: the model's 512
	stride int // -1: the pipeline's default
}

func nerCases() []nerCase {
	long := strings.Repeat("Barack Obama met Angela Merkel in Zürich; déjà vu at 東京タワー, e-mail a.b@c.com! ", 18)
	return []nerCase{
		{"accents", "Jürgen Müller-Lüdenscheidt besuchte São Paulo, Kraków und Zürich!", 0, -1},
		{"cjk", "北京大学的李明在上海工作。", 0, -1},
		{"cjk-in-vocab", "日本の首都は東京です。京都は東の都です", 0, -1},
		{"cjk-mixed", "東京タワーとTokyo Towerは同じです。", 0, -1},
		{"punctuation", `Wait... what?! (Really) — "quotes", 'single' & e-mail: john.doe@example.org; 3.14%`, 0, -1},
		{"french", "Naïve café owners in Montréal: «Crème brûlée» costs €5.50?!", 0, -1},
		{"unknown", "Ωmega ẞtraße ☃ 🔥🔥 in Москва, ＦＵＬＬ width", 0, -1},
		{"whitespace", "  leading and\ttabs\nnew lines  ", 0, -1},
		{"empty", "", 0, -1},
		{"spaces-only", "   ", 0, -1},
		{"long-default", long, 0, -1},
		{"long-32-stride-8", firstRunes(long, 400), 32, 8},
		{"long-32-stride-0", firstRunes(long, 400), 32, 0},
		{"long-16-stride-6", "Jürgen Müller-Lüdenscheidt besuchte 北京大学, São Paulo und Zürich! " + firstRunes(long, 160), 16, 6},
	}
}

func firstRunes(s string, n int) string { return string([]rune(s)[:n]) }

// classifierFor builds a pipeline over the loaded model's scheduler with window length
// maxLen (0: the model's).
func classifierFor(t *testing.T, m *Model, maxLen int) *TokenClassification {
	t.Helper()
	base := m.TokenClassifier.(*TokenClassification)
	if maxLen == 0 {
		return base
	}
	tc, err := NewTokenClassification(TokenClassificationConfig{Tokenizer: base.tok, Scheduler: base.sched,
		Labels: base.labels, MaxLength: maxLen, UnkToken: "[UNK]"})
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

func (c nerCase) options(s Aggregation) TokenClassifyOptions {
	o := TokenClassifyOptions{Aggregation: s}
	if c.stride >= 0 {
		o.Stride = &c.stride
	}
	return o
}

// encoding is what gen_ner_golden.py reads of a tokenized text.
type encoding struct {
	IDs         []int32     `json:"input_ids"`
	Offsets     [][2]int    `json:"offsets"`
	Special     []int       `json:"special_tokens_mask"`
	SequenceIDs []int       `json:"sequence_ids"`
	Logits      [][]float32 `json:"logits,omitempty"`
}

func encDump(e *tokenize.Encoding) encoding {
	d := encoding{IDs: e.IDs, SequenceIDs: e.SequenceIDs}
	for i := range e.IDs {
		d.Offsets = append(d.Offsets, [2]int{e.Offsets[i].Start, e.Offsets[i].End})
		d.Special = append(d.Special, int(e.SpecialTokensMask[i]))
	}
	return d
}

// TestDumpNERInputs writes, for gen_ner_golden.py, each new case's whole encoding and the
// model inputs and ONNX Runtime logits of every window. It runs only with INFERGO_GEN_NER set to the output path.
func TestDumpNERInputs(t *testing.T) {
	path := os.Getenv("INFERGO_GEN_NER")
	if path == "" {
		t.Skip("set INFERGO_GEN_NER to regenerate the new-input golden")
	}
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{})
	type dump struct {
		Name    string     `json:"name"`
		Text    string     `json:"text"`
		MaxLen  int        `json:"max_length"`
		Stride  int        `json:"stride"`
		Full    encoding   `json:"full"`
		Windows []encoding `json:"windows"`
	}
	var out []dump
	for _, c := range nerCases() {
		tc := classifierFor(t, m, c.maxLen)
		stride := tc.stride
		if c.stride >= 0 {
			stride = c.stride
		}
		full, err := tc.tok.Encode(c.text, tokenize.Options{AddSpecialTokens: true})
		if err != nil {
			t.Fatal(err)
		}
		d := dump{Name: c.name, Text: c.text, MaxLen: tc.maxLen, Stride: stride, Full: encDump(full), Windows: []encoding{}}
		windows, _, err := tc.windows([]string{c.text}, stride, &Stats{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range windows {
			e := w.enc
			res, err := tc.sched.Submit(context.Background(), []sched.Sequence{{IDs: e.IDs, TypeIDs: e.TypeIDs}})
			if err != nil {
				t.Fatal(err)
			}
			flat := res[0].Outputs[tc.output].Float32s()
			wd := encDump(e)
			for i := range e.IDs {
				wd.Logits = append(wd.Logits, flat[i*len(tc.labels):(i+1)*len(tc.labels)])
			}
			d.Windows = append(d.Windows, wd)
		}
		out = append(out, d)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTokenClassificationNewInputs checks every strategy on the new inputs against the numpy
// reference. For texts split into windows, "none" is this server's extension (transformers
// refuses stride with none): windows' tokens merged like entities, indices counted from the
// start of the text.
func TestTokenClassificationNewInputs(t *testing.T) {
	var g struct {
		Cases []struct {
			Name    string `json:"name"`
			Text    string `json:"text"`
			MaxLen  int    `json:"max_length"`
			Stride  int    `json:"stride"`
			Windows int    `json:"windows"`
		} `json:"cases"`
	}
	path := filepath.Join("testdata", "ner_new_inputs.json")
	testutil.LoadJSON(t, path, &g)
	var raw struct {
		Cases []map[string]json.RawMessage `json:"cases"`
	}
	testutil.LoadJSON(t, path, &raw)
	cases := nerCases()
	if len(g.Cases) != len(cases) {
		t.Fatalf("golden has %d cases, the test %d: regenerate it", len(g.Cases), len(cases))
	}
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{})
	worst := map[Aggregation]float64{}
	counts := map[Aggregation]int{}
	for i, c := range cases {
		gc := g.Cases[i]
		if gc.Name != c.name || gc.Text != c.text {
			t.Fatalf("case %d is %q in the golden, %q here: regenerate it", i, gc.Name, c.name)
		}
		tc := classifierFor(t, m, c.maxLen)
		if tc.maxLen != gc.MaxLen {
			t.Fatalf("%s: window %d, golden %d", c.name, tc.maxLen, gc.MaxLen)
		}
		for _, s := range strategies {
			var want []goldenEntity
			if err := json.Unmarshal(raw.Cases[i]["pipeline_"+string(s)], &want); err != nil {
				t.Fatal(err)
			}
			got, _, err := tc.ClassifyTokens(context.Background(), []string{c.text}, c.options(s))
			if err != nil {
				t.Fatalf("%s %s: %v", c.name, s, err)
			}
			worst[s] = max(worst[s], compareEntities(t, c.name+" "+string(s), got[0], want, 1e-4))
			counts[s] += len(want)
		}
	}
	for _, s := range strategies {
		t.Logf("%-7s %4d entities over %d cases, max score difference %.3g", s, counts[s], len(cases), worst[s])
	}
}
