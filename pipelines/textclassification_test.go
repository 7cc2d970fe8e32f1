package pipelines

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

type classifierGolden struct {
	Texts  []string    `json:"texts"`
	Logits [][]float64 `json:"logits"`
	TopK   [][]struct {
		Label string  `json:"label"`
		Score float64 `json:"score"`
	} `json:"pipeline_top_k_none"`
}

func textInputs(texts ...string) []TextInput {
	in := make([]TextInput, len(texts))
	for i, s := range texts {
		in[i] = TextInput{Text: s}
	}
	return in
}

// TestTextClassificationMatchesTransformers is the parity test against transformers'
// text-classification pipeline with top_k=None (every label, softmax, sorted).
func TestTextClassificationMatchesTransformers(t *testing.T) {
	var g classifierGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &g)
	m := loadFixture(t, "tiny-bert-classifier", LoadOptions{})
	want := []string{"greeting", "goodbye", "order_pizza", "cancel_order"}
	if m.Info.Task != TaskTextClassification || m.TextClassifier == nil || strings.Join(m.Info.Labels, ",") != strings.Join(want, ",") {
		t.Fatalf("info %+v", m.Info)
	}
	got, stats, err := m.TextClassifier.Classify(context.Background(), textInputs(g.Texts...), TextClassifyOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, text := range g.Texts {
		if len(got[i]) != len(g.TopK[i]) {
			t.Fatalf("%q: %d labels, want %d", text, len(got[i]), len(g.TopK[i]))
		}
		for k, w := range g.TopK[i] {
			if got[i][k].Label != w.Label {
				t.Errorf("%q rank %d: %s, want %s", text, k, got[i][k].Label, w.Label)
			}
			worst = max(worst, math.Abs(float64(got[i][k].Score)-w.Score))
		}
	}
	t.Logf("max score difference %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("max score difference %g > 1e-4", worst)
	}
	if stats.Inputs != len(g.Texts) || stats.Tokens == 0 {
		t.Errorf("stats %+v", stats)
	}
}

// TestTextClassificationFunctions checks function_to_apply and top_k against the golden logits:
// sigmoid and none are computed from the same logits the softmax golden came from.
func TestTextClassificationFunctions(t *testing.T) {
	var g classifierGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &g)
	m := loadFixture(t, "tiny-bert-classifier", LoadOptions{})
	labels := m.Info.Labels
	ctx := context.Background()
	for _, fn := range []ClassificationFunction{FunctionSigmoid, FunctionNone} {
		got, _, err := m.TextClassifier.Classify(ctx, textInputs(g.Texts[0]), TextClassifyOptions{Function: fn, TopK: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0]) != 2 {
			t.Fatalf("%s top 2: %v", fn, got[0])
		}
		for _, ls := range got[0] {
			id := -1
			for j, l := range labels {
				if l == ls.Label {
					id = j
				}
			}
			x := g.Logits[0][id]
			want := x
			if fn == FunctionSigmoid {
				want = 1 / (1 + math.Exp(-x))
			}
			if math.Abs(float64(ls.Score)-want) > 1e-4 {
				t.Errorf("%s %s: %v, want %v", fn, ls.Label, ls.Score, want)
			}
		}
		if got[0][0].Score < got[0][1].Score {
			t.Errorf("%s: not sorted: %v", fn, got[0])
		}
	}
	var verr *ValidationError
	for _, o := range []TextClassifyOptions{{Function: "relu"}, {TopK: -1}} {
		if _, _, err := m.TextClassifier.Classify(ctx, textInputs("a"), o); !errors.As(err, &verr) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, _, err := m.TextClassifier.Classify(ctx, nil, TextClassifyOptions{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("no inputs: %v", err)
	}
	long := strings.Repeat("pizza ", 600)
	if _, _, err := m.TextClassifier.Classify(ctx, textInputs(long), TextClassifyOptions{}); !errors.As(err, &verr) || !strings.Contains(err.Error(), "512") {
		t.Errorf("too long without truncation: %v", err)
	}
	if _, _, err := m.TextClassifier.Classify(ctx, textInputs(long), TextClassifyOptions{Truncate: true}); err != nil {
		t.Errorf("too long with truncation: %v", err)
	}
}

func TestDefaultFunction(t *testing.T) {
	for _, c := range []struct {
		problem string
		labels  int
		want    ClassificationFunction
	}{
		{"", 4, FunctionSoftmax}, {"", 1, FunctionSigmoid}, {ProblemMultiLabel, 4, FunctionSigmoid},
		{ProblemSingleLabel, 4, FunctionSoftmax}, {ProblemRegression, 1, FunctionNone},
	} {
		if got := defaultFunction(c.problem, c.labels); got != c.want {
			t.Errorf("%q/%d: %s, want %s", c.problem, c.labels, got, c.want)
		}
	}
}

// TestTextClassificationPairs: a pair is one input with its own type ids, not two texts.
func TestTextClassificationPairs(t *testing.T) {
	m := loadFixture(t, "tiny-bert-classifier", LoadOptions{})
	ctx := context.Background()
	pair, stats, err := m.TextClassifier.Classify(ctx, []TextInput{{Text: "I want pizza", Pair: "cancel it", HasPair: true}}, TextClassifyOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	joined, _, err := m.TextClassifier.Classify(ctx, textInputs("I want pizza cancel it"), TextClassifyOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := m.TextClassifier.(*TextClassification).tok.EncodePair("I want pizza", "cancel it", tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pair) != 1 || stats.Tokens != enc.Len() || enc.TypeIDs[enc.Len()-1] != 1 {
		t.Errorf("pair: %v, %d tokens, want %d (type ids %v)", pair, stats.Tokens, enc.Len(), enc.TypeIDs)
	}
	if pair[0][0].Score == joined[0][0].Score {
		t.Error("pair scored like the joined text: type ids or separators ignored")
	}
}

// TestClassifiersBatchedEqualSingle: inputs classified together (sharing padded batches) and
// concurrently one at a time give the same labels and scores.
func TestClassifiersBatchedEqualSingle(t *testing.T) {
	var cg classifierGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &cg)
	ng := loadNERGolden(t, testutil.Fixture("tiny-bert-ner", "golden.json"))
	cm := loadFixture(t, "tiny-bert-classifier", LoadOptions{Sessions: 2, Sched: sched.Config{Workers: 2}})
	nm := loadFixture(t, "tiny-bert-ner", LoadOptions{Sessions: 2, Sched: sched.Config{Workers: 2}})
	ctx := context.Background()
	all, _, err := cm.TextClassifier.Classify(ctx, textInputs(cg.Texts...), TextClassifyOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	ents, _, err := nm.TokenClassifier.ClassifyTokens(ctx, ng.Texts, TokenClassifyOptions{Aggregation: AggregateAverage})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, s := range cg.Texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			one, _, err := cm.TextClassifier.Classify(ctx, textInputs(s), TextClassifyOptions{Truncate: true})
			if err != nil {
				t.Error(err)
				return
			}
			for k := range one[0] {
				if one[0][k].Label != all[i][k].Label || math.Abs(float64(one[0][k].Score-all[i][k].Score)) > 1e-6 {
					t.Errorf("%q: alone %v, batched %v", s, one[0], all[i])
				}
			}
		}()
	}
	for i, s := range ng.Texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			one, _, err := nm.TokenClassifier.ClassifyTokens(ctx, []string{s}, TokenClassifyOptions{Aggregation: AggregateAverage})
			if err != nil {
				t.Error(err)
				return
			}
			if len(one[0]) != len(ents[i]) {
				t.Errorf("%q: alone %v, batched %v", s, one[0], ents[i])
				return
			}
			for k, e := range one[0] {
				b := ents[i][k]
				if e.Label != b.Label || e.Word != b.Word || e.Start != b.Start || e.End != b.End || math.Abs(float64(e.Score-b.Score)) > 1e-6 {
					t.Errorf("%q: alone %+v, batched %+v", s, e, b)
				}
			}
		}()
	}
	wg.Wait()
}
