package pipelines

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// goldenEntity is one item of transformers' token-classification output: "entity" and
// "index" for the none strategy, "entity_group" otherwise.
type goldenEntity struct {
	Entity      *string `json:"entity"`
	EntityGroup *string `json:"entity_group"`
	Index       *int    `json:"index"`
	Score       float64 `json:"score"`
	Word        string  `json:"word"`
	Start       int     `json:"start"`
	End         int     `json:"end"`
}

var strategies = []Aggregation{AggregateNone, AggregateSimple, AggregateFirst, AggregateAverage, AggregateMax}

type nerGolden struct {
	Texts   []string         `json:"texts"`
	Logits  [][][]float64    `json:"logits"`
	None    [][]goldenEntity `json:"pipeline_none"`
	Simple  [][]goldenEntity `json:"pipeline_simple"`
	First   [][]goldenEntity `json:"pipeline_first"`
	Average [][]goldenEntity `json:"pipeline_average"`
	Max     [][]goldenEntity `json:"pipeline_max"`
}

func (g *nerGolden) pipeline(s Aggregation) [][]goldenEntity {
	return map[Aggregation][][]goldenEntity{AggregateNone: g.None, AggregateSimple: g.Simple,
		AggregateFirst: g.First, AggregateAverage: g.Average, AggregateMax: g.Max}[s]
}

func loadNERGolden(t *testing.T, path string) *nerGolden {
	t.Helper()
	var g nerGolden
	testutil.LoadJSON(t, path, &g)
	for _, s := range strategies {
		if len(g.pipeline(s)) != len(g.Texts) {
			t.Fatalf("%s: pipeline_%s has %d outputs for %d texts", path, s, len(g.pipeline(s)), len(g.Texts))
		}
	}
	return &g
}

// compareEntities checks got against transformers' output: labels, words, offsets and
// indices identical, scores within tol. It returns the largest score difference.
func compareEntities(t *testing.T, what string, got []Entity, want []goldenEntity, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entities, want %d\n got  %v\n want %v", what, len(got), len(want), got, want)
		return math.Inf(1)
	}
	worst := 0.0
	for i, w := range want {
		g := got[i]
		label, index := "", -1
		switch {
		case w.Entity != nil:
			label = *w.Entity
			if w.Index != nil {
				index = *w.Index
			}
		case w.EntityGroup != nil:
			label = *w.EntityGroup
		}
		if g.Label != label || g.Word != w.Word || g.Start != w.Start || g.End != w.End || g.Index != index {
			t.Errorf("%s[%d]: got {%s %q %d:%d index %d}, want {%s %q %d:%d index %d}", what, i,
				g.Label, g.Word, g.Start, g.End, g.Index, label, w.Word, w.Start, w.End, index)
		}
		d := math.Abs(float64(g.Score) - w.Score)
		worst = max(worst, d)
		if d > tol {
			t.Errorf("%s[%d] %s: score %v, want %v", what, i, label, g.Score, w.Score)
		}
	}
	return worst
}

// TestTokenClassificationMatchesTransformers is the parity test against transformers 5.17's
// token-classification pipeline for all five aggregation strategies.
func TestTokenClassificationMatchesTransformers(t *testing.T) {
	g := loadNERGolden(t, testutil.Fixture("tiny-bert-ner", "golden.json"))
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{})
	if m.Info.Task != TaskTokenClassification || m.TokenClassifier == nil || len(m.Info.Labels) != 9 || m.Info.MaxInputLength != 512 {
		t.Fatalf("info %+v", m.Info)
	}
	for _, s := range strategies {
		got, stats, err := m.TokenClassifier.ClassifyTokens(context.Background(), g.Texts, TokenClassifyOptions{Aggregation: s})
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, text := range g.Texts {
			worst = max(worst, compareEntities(t, fmt.Sprintf("%s %q", s, text), got[i], g.pipeline(s)[i], 1e-4))
		}
		t.Logf("%-7s max score difference %.3g", s, worst)
		if stats.Inputs != len(g.Texts) || stats.Tokens == 0 {
			t.Errorf("stats %+v", stats)
		}
	}
}

// TestSoftmaxMatchesNumpy feeds the golden (torch) logits through softmax32 and compares with
// the scores transformers printed: float32 arithmetic in numpy's order (pairwise sums) gives
// the same bits for most tokens. Not all: the golden logits come from one padded batch while
// the pipeline ran each text alone, and numpy's SIMD exp may be an ulp off. (A sequential or
// float64 sum matches far fewer: 71 and 66 of 117 against pairwise's 102.)
func TestSoftmaxMatchesNumpy(t *testing.T) {
	g := loadNERGolden(t, testutil.Fixture("tiny-bert-ner", "golden.json"))
	exact, total := 0, 0
	for i := range g.Texts {
		for _, e := range g.None[i] {
			row := make([]float32, len(g.Logits[i][*e.Index]))
			for j, x := range g.Logits[i][*e.Index] {
				row[j] = float32(x)
			}
			p := make([]float32, len(row))
			softmax32(row, p)
			got := p[argmax32(p)]
			total++
			if float64(got) == e.Score {
				exact++
			} else if math.Abs(float64(got)-e.Score) > 1e-6 {
				t.Errorf("%q token %d: %v, want %v", g.Texts[i], *e.Index, got, e.Score)
			}
		}
	}
	t.Logf("softmax: %d of %d scores bit-identical to numpy's", exact, total)
	if exact*4 < total*3 {
		t.Errorf("only %d of %d scores bit-identical", exact, total)
	}
}

func TestTokenClassificationValidation(t *testing.T) {
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{MaxClientBatchSize: 2})
	tc := m.TokenClassifier
	ctx := context.Background()
	var verr *ValidationError
	big, neg, ok := 510, -1, 509
	for _, c := range []struct {
		texts []string
		o     TokenClassifyOptions
		field string
	}{
		{[]string{"a"}, TokenClassifyOptions{Aggregation: "longest"}, "aggregation_strategy"},
		{[]string{"a"}, TokenClassifyOptions{Stride: &big}, "stride"},
		{[]string{"a"}, TokenClassifyOptions{Stride: &neg}, "stride"},
		{[]string{"a", "b", "c"}, TokenClassifyOptions{}, "inputs"},
		{[]string{"ok", "bad \xff"}, TokenClassifyOptions{}, "inputs"},
	} {
		if _, _, err := tc.ClassifyTokens(ctx, c.texts, c.o); !errors.As(err, &verr) || verr.Field != c.field {
			t.Errorf("%q %+v: %v", c.texts, c.o, err)
		}
	}
	if _, _, err := tc.ClassifyTokens(ctx, nil, TokenClassifyOptions{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("no inputs: %v", err)
	}
	if _, _, err := tc.ClassifyTokens(ctx, []string{strings.Repeat("x ", 515)}, TokenClassifyOptions{Stride: &ok}); err != nil {
		t.Errorf("stride 509 (window 510 text tokens): %v", err)
	}
	out, stats, err := tc.ClassifyTokens(ctx, []string{"", "Hawaii"}, TokenClassifyOptions{})
	if err != nil || len(out) != 2 || out[0] == nil || len(out[0]) != 0 || len(out[1]) == 0 {
		t.Fatalf("empty text: %v %v", out, err)
	}
	if stats.Characters != 6 || stats.Tokens != 6 { // the empty text is not run: [CLS] h ##a ##wa ##ii [SEP]
		t.Errorf("stats %+v", stats)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := tc.ClassifyTokens(cancelled, []string{"x"}, TokenClassifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestClassifiersOverloaded(t *testing.T) {
	for _, fixture := range []string{"tiny-bert-ner", "tiny-bert-classifier"} {
		m := loadFixture(t, fixture, LoadOptions{Sched: sched.Config{MaxConcurrentRequests: 1}})
		var s *sched.Scheduler
		if m.TokenClassifier != nil {
			s = m.TokenClassifier.(*TokenClassification).sched
		} else {
			s = m.TextClassifier.(*TextClassification).sched
		}
		tk, err := s.Admit()
		if err != nil {
			t.Fatal(err)
		}
		if m.TokenClassifier != nil {
			_, _, err = m.TokenClassifier.ClassifyTokens(context.Background(), []string{"x"}, TokenClassifyOptions{})
		} else {
			_, _, err = m.TextClassifier.Classify(context.Background(), textInputs("x"), TextClassifyOptions{})
		}
		if !errors.Is(err, sched.ErrOverloaded) {
			t.Errorf("%s overloaded: %v", fixture, err)
		}
		tk.Release()
	}
}

// TestWindows checks the split of long texts: every window fits, keeps [CLS]/[SEP], and
// consecutive windows share exactly stride text tokens; together they cover the whole text.
func TestWindows(t *testing.T) {
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{})
	tc := m.TokenClassifier.(*TokenClassification)
	text := strings.Repeat("Café déjà vu in Zürich, 東京は日本の首都です。 ", 30)
	full, err := tc.tok.Encode(text, tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ maxLen, stride int }{{512, 127}, {64, 0}, {64, 61}, {16, 5}, {3, 0}} {
		ws := splitWindows(full, c.maxLen, c.stride)
		content := c.maxLen - 2
		next := 1 // the next full-encoding token index not yet covered
		for k, w := range ws {
			e := w.enc
			if e.Len() > c.maxLen || e.IDs[0] != full.IDs[0] || e.IDs[e.Len()-1] != full.IDs[full.Len()-1] {
				t.Fatalf("%+v window %d: %d tokens %v…%v", c, k, e.Len(), e.IDs[0], e.IDs[e.Len()-1])
			}
			if k > 0 && w.shift != ws[k-1].shift+content-c.stride {
				t.Fatalf("%+v window %d: shift %d after %d", c, k, w.shift, ws[k-1].shift)
			}
			for i := 1; i < e.Len()-1; i++ {
				if e.IDs[i] != full.IDs[i+w.shift] || e.Offsets[i] != full.Offsets[i+w.shift] {
					t.Fatalf("%+v window %d token %d differs from the whole text's token %d", c, k, i, i+w.shift)
				}
			}
			if first := 1 + w.shift; k > 0 && next-first != c.stride {
				t.Fatalf("%+v window %d overlaps by %d, want %d", c, k, next-first, c.stride)
			}
			next = w.shift + e.Len() - 1
		}
		if next != full.Len()-1 {
			t.Errorf("%+v: windows cover tokens up to %d of %d", c, next, full.Len()-1)
		}
	}
	if ws := splitWindows(full, full.Len(), 0); len(ws) != 1 || ws[0].enc != full {
		t.Error("an encoding that fits was split")
	}
}

// TestLongTextNone: with windows, "none" reports every token once (the windows' shared tokens
// merged), with indices counted from the start of the text.
func TestLongTextNone(t *testing.T) {
	m := loadFixture(t, "tiny-bert-ner", LoadOptions{})
	tc := m.TokenClassifier.(*TokenClassification)
	text := strings.Repeat("Angela Merkel met Emmanuel Macron in Paris on Tuesday. ", 60)
	full, err := tc.tok.Encode(text, tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := tc.ClassifyTokens(context.Background(), []string{text}, TokenClassifyOptions{Aggregation: AggregateNone, IgnoreLabels: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != full.Len()-2 {
		t.Fatalf("%d tokens reported, the text has %d", len(got[0]), full.Len()-2)
	}
	for i, e := range got[0] {
		if e.Index != i+1 || e.Start != full.Offsets[i+1].Start || e.End != full.Offsets[i+1].End {
			t.Fatalf("token %d: %+v, want index %d at %v", i, e, i+1, full.Offsets[i+1])
		}
	}
}
