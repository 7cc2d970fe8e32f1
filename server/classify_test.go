package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

// End-to-end tests of token-classification, text-classification and TEI /predict: the real
// fixtures loaded with pipelines.Load (ONNX Runtime, batching scheduler) behind the real
// server, checked against transformers' goldens.

// loadReal loads a fixture repo as `infergo serve` would.
func loadReal(t *testing.T, fixture string, o pipelines.LoadOptions) *pipelines.Model {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(testutil.Fixture(fixture))
	if err != nil {
		t.Fatal(err)
	}
	o.Opener = env
	o.Runtime.IntraOpThreads = 1
	m, err := pipelines.Load(context.Background(), repo, o)
	if err != nil {
		t.Fatalf("load %s: %v", fixture, err)
	}
	return m // the server owns and closes it
}

func serveReal(t *testing.T, m *pipelines.Model, mutate ...func(*server.Config)) *st.Instance {
	t.Helper()
	cfg := server.Config{Load: func(context.Context) (*pipelines.Model, error) { return m, nil }}
	for _, f := range mutate {
		f(&cfg)
	}
	in := st.Start(t, cfg)
	waitHealthy(t, in.URL)
	return in
}

type wireEntity struct {
	Entity      *string `json:"entity"`
	EntityGroup *string `json:"entity_group"`
	Index       *int    `json:"index"`
	Score       float64 `json:"score"`
	Word        string  `json:"word"`
	Start       int     `json:"start"`
	End         int     `json:"end"`
}

type nerFixture struct {
	Texts []string                  `json:"texts"`
	Runs  map[string][][]wireEntity `json:"-"`
}

func loadNERFixture(t *testing.T) nerFixture {
	t.Helper()
	var raw map[string]json.RawMessage
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-ner", "golden.json"), &raw)
	g := nerFixture{Runs: map[string][][]wireEntity{}}
	if err := json.Unmarshal(raw["texts"], &g.Texts); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"none", "simple", "first", "average", "max"} {
		var runs [][]wireEntity
		if err := json.Unmarshal(raw["pipeline_"+s], &runs); err != nil {
			t.Fatal(err)
		}
		g.Runs[s] = runs
	}
	return g
}

var (
	// The containers' item shape, in transformers' key order.
	groupItem = regexp.MustCompile(`^\{"entity_group":"[^"]*","score":[0-9.e-]+,"word":"(?:[^"\\]|\\.)*","start":\d+,"end":\d+\}$`)
	tokenItem = regexp.MustCompile(`^\{"entity":"[^"]*","score":[0-9.e-]+,"index":\d+,"word":"(?:[^"\\]|\\.)*","start":\d+,"end":\d+\}$`)
)

// checkEntities compares a response body with transformers' entities.
func checkEntities(t *testing.T, what string, body []byte, want []wireEntity, tokens bool) {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	re := groupItem
	if tokens {
		re = tokenItem
	}
	var got []wireEntity
	for _, it := range items {
		if !re.Match(it) {
			t.Errorf("%s: item %s is not in the expected shape", what, it)
		}
		var e wireEntity
		if err := json.Unmarshal(it, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d entities, want %d:\n%s", what, len(got), len(want), body)
	}
	str := func(p *string) string {
		if p == nil {
			return "<none>"
		}
		return *p
	}
	num := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	for i, w := range want {
		g := got[i]
		if str(g.Entity) != str(w.Entity) || str(g.EntityGroup) != str(w.EntityGroup) || num(g.Index) != num(w.Index) ||
			g.Word != w.Word || g.Start != w.Start || g.End != w.End || math.Abs(g.Score-w.Score) > 1e-4 {
			t.Errorf("%s[%d]: got %s, want %s/%s index %d %q %d:%d %v", what, i, items[i],
				str(w.Entity), str(w.EntityGroup), num(w.Index), w.Word, w.Start, w.End, w.Score)
		}
	}
}

func TestAICTokenClassificationGolden(t *testing.T) {
	g := loadNERFixture(t)
	in := serveReal(t, loadReal(t, "tiny-bert-ner", pipelines.LoadOptions{}))
	for _, s := range []string{"", "none", "simple", "first", "average", "max", "AVERAGE"} {
		for i, text := range g.Texts {
			body, _ := json.Marshal(map[string]any{"inputs": text, "parameters": map[string]any{"aggregation_strategy": s}})
			if s == "" {
				body, _ = json.Marshal(map[string]any{"inputs": text}) // the containers' default: simple
			}
			r := st.Post(t, in.URL, string(body))
			if r.Status != 200 {
				t.Fatalf("%s %q: %d %s", s, text, r.Status, r.Body)
			}
			strategy := strings.ToLower(s)
			if strategy == "" {
				strategy = "simple"
			}
			checkEntities(t, s+" "+text, r.Body, g.Runs[strategy][i], strategy == "none")
			if got, want := r.Header.Get("x-compute-characters"), fmt.Sprint(len([]rune(text))); got != want {
				t.Errorf("x-compute-characters %s, want %s", got, want)
			}
			checkComputeHeaders(t, r, "cpu")
		}
	}
	// A bare JSON string and raw text are the same request (§3.4).
	want := st.Post(t, in.URL, `{"inputs":"Hugging Face is based in New York City."}`).Body
	for _, body := range []string{`"Hugging Face is based in New York City."`, `Hugging Face is based in New York City.`} {
		if r := st.Post(t, in.URL, body); r.Status != 200 || string(r.Body) != string(want) {
			t.Errorf("%s: %d %s", body, r.Status, r.Body)
		}
	}
}

// TestAICTokenClassificationContract covers the per-image test (key union), unicode, empty
// and very long inputs, and the validation errors.
func TestAICTokenClassificationContract(t *testing.T) {
	m := loadReal(t, "tiny-bert-ner", pipelines.LoadOptions{})
	in := serveReal(t, m)
	r := st.Post(t, in.URL, `{"inputs":"Hello, my name is John and I live in New York"}`)
	keys := map[string]bool{}
	var items []map[string]any
	if err := json.Unmarshal(r.Body, &items); r.Status != 200 || err != nil || len(items) == 0 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	for _, it := range items {
		for k := range it {
			keys[k] = true
		}
		if sc := it["score"].(float64); sc < 0 || sc > 1 {
			t.Errorf("score %v", sc)
		}
	}
	if fmt.Sprint(keys) != "map[end:true entity_group:true score:true start:true word:true]" {
		t.Errorf("keys %v", keys)
	}

	// Unicode (accents, CJK, unknown characters, emoji): offsets are characters, words are
	// decoded as transformers does; the reference is the pipelines package's numpy golden.
	var ng struct {
		Cases []map[string]json.RawMessage `json:"cases"`
	}
	testutil.LoadJSON(t, filepath.Join(testutil.Root(), "pipelines", "testdata", "ner_new_inputs.json"), &ng)
	checked := 0
	for _, c := range ng.Cases {
		var name, text string
		var maxLen int
		json.Unmarshal(c["name"], &name)
		json.Unmarshal(c["text"], &text)
		json.Unmarshal(c["max_length"], &maxLen)
		if maxLen != 512 || strings.HasPrefix(name, "long") {
			continue
		}
		for _, s := range []string{"simple", "none", "max"} {
			var want []wireEntity
			if err := json.Unmarshal(c["pipeline_"+s], &want); err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]any{"inputs": text, "parameters": map[string]any{"aggregation_strategy": s}})
			r := st.Post(t, in.URL, string(body))
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
			checkEntities(t, name+" "+s, r.Body, want, s == "none")
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d new-input checks", checked)
	}
	// Empty strings have no entities.
	for _, body := range []string{`{"inputs":""}`, `""`, `{"inputs":"   "}`} {
		expectJSON(t, st.Post(t, in.URL, body), 200, `[]`)
	}

	// Very long input: windows, not truncation. Entities reach the end of the text, and the
	// answer is the pipeline's (whose windows are checked against the reference).
	long := strings.Repeat("Angela Merkel met Emmanuel Macron in Paris on Tuesday. ", 120)
	zero, wide := 0, 400
	for _, c := range []struct {
		params string
		opts   pipelines.TokenClassifyOptions
	}{
		{`{}`, pipelines.TokenClassifyOptions{}},
		{`{"stride":0}`, pipelines.TokenClassifyOptions{Stride: &zero}},
		{`{"stride":400,"aggregation_strategy":"first"}`, pipelines.TokenClassifyOptions{Stride: &wide, Aggregation: pipelines.AggregateFirst}},
		{`{"aggregation_strategy":"none"}`, pipelines.TokenClassifyOptions{Aggregation: pipelines.AggregateNone}},
	} {
		body, _ := json.Marshal(map[string]any{"inputs": long, "parameters": json.RawMessage(c.params)})
		r := st.Post(t, in.URL, string(body))
		var ents []wireEntity
		if err := json.Unmarshal(r.Body, &ents); r.Status != 200 || err != nil || len(ents) == 0 {
			t.Fatalf("%s: %d %.200s", c.params, r.Status, r.Body)
		}
		if last := ents[len(ents)-1]; last.End < len(long)-2 {
			t.Errorf("%s: last entity ends at %d of %d characters: truncated", c.params, last.End, len(long))
		}
		want, _, err := m.TokenClassifier.ClassifyTokens(context.Background(), []string{long}, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != len(want[0]) {
			t.Fatalf("%s: %d entities over HTTP, %d from the pipeline", c.params, len(ents), len(want[0]))
		}
		for i, e := range want[0] {
			if ents[i].Start != e.Start || ents[i].End != e.End || ents[i].Word != e.Word {
				t.Errorf("%s[%d]: %+v, pipeline %+v", c.params, i, ents[i], e)
			}
		}
	}

	for _, c := range []struct{ body, want string }{
		{"\xc3\x28", `{"error":"'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"}`},
		{`null`, "{\"error\":[\"Input should be a valid string: received `None` in `parameters`\"]}"},
		{`{"inputs":["x"]}`, "{\"error\":[\"Input should be a valid string: received `['x']` in `parameters`\"]}"},
		{`{"inputs":{"a":1}}`, "{\"error\":[\"Input should be a valid string: received `{'a': 1}` in `parameters`\"]}"},
		{`{"inputs":12}`, "{\"error\":[\"Input should be a valid string: received `12` in `parameters`\"]}"},
		{`{"inputs":"x","parameters":{"foo":1}}`, `{"error":"__call__() got an unexpected keyword argument 'foo'"}`},
		{`{"inputs":"x","parameters":[1]}`, `{"error":"__call__() argument after ** must be a mapping, not list"}`},
		{`{"inputs":"x","parameters":{"aggregation_strategy":"biggest"}}`, `{"error":"` + "`aggregation_strategy`" + ` must be one of \"none\", \"simple\", \"first\", \"average\", \"max\""}`},
		{`{"inputs":"x","parameters":{"aggregation_strategy":1}}`, `{"error":"` + "`aggregation_strategy`" + ` must be one of \"none\", \"simple\", \"first\", \"average\", \"max\""}`},
		{`{"inputs":"x","parameters":{"ignore_labels":"O"}}`, "{\"error\":\"`ignore_labels` must be a list of strings\"}"},
		{`{"inputs":"x","parameters":{"ignore_labels":["O",1]}}`, "{\"error\":\"`ignore_labels` must be a list of strings\"}"},
		{`{"inputs":"x","parameters":{"stride":-1}}`, "{\"error\":\"`stride` must be a non-negative integer\"}"},
		{`{"inputs":"x","parameters":{"stride":1.5}}`, "{\"error\":\"`stride` must be a non-negative integer\"}"},
		{`{"inputs":"x","parameters":{"stride":510}}`, "{\"error\":\"`stride` must be less than `tokenizer.model_max_length` (or even lower if the tokenizer adds special tokens): 510 ≥ 510\"}"},
	} {
		expectJSON(t, st.Post(t, in.URL, c.body), 400, c.want)
	}
	r = st.Post(t, in.URL, `{"inputs":"x"}`, "lora", "adapter")
	expectJSON(t, r, 400, `{"error":"__call__() got an unexpected keyword argument 'lora_adapter'"}`)
	// ignore_labels [] keeps the O tokens; parameters null is the default.
	r = st.Post(t, in.URL, `{"inputs":"nothing here","parameters":{"ignore_labels":[],"aggregation_strategy":"none","stride":null}}`)
	if r.Status != 200 || strings.Count(string(r.Body), `"entity"`) != 5 {
		t.Errorf("ignore_labels []: %d %s", r.Status, r.Body)
	}
	// Text classification is not this model's task.
	in2 := serveReal(t, m, func(c *server.Config) { c.Task = pipelines.TaskTextClassification })
	expectJSON(t, st.Post(t, in2.URL, `{"inputs":"x"}`), 500, `{"error":"text-classification is not a valid pipeline for model : `+m.Info.ModelID+`"}`)
}

type classifierFixture struct {
	Texts  []string    `json:"texts"`
	Logits [][]float64 `json:"logits"`
	TopK   [][]struct {
		Label string  `json:"label"`
		Score float64 `json:"score"`
	} `json:"pipeline_top_k_none"`
}

type wireLabel struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

func TestAICTextClassification(t *testing.T) {
	var g classifierFixture
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &g)
	in := serveReal(t, loadReal(t, "tiny-bert-classifier", pipelines.LoadOptions{}))
	item := regexp.MustCompile(`\{"label":"[a-z_]+","score":[0-9.e-]+\}`)
	for i, text := range g.Texts {
		for _, body := range []string{`{"inputs":` + jsonString(text) + `}`, jsonString(text), text} {
			r := st.Post(t, in.URL, body)
			var got [][]wireLabel
			if err := json.Unmarshal(r.Body, &got); r.Status != 200 || err != nil || len(got) != 1 {
				t.Fatalf("%s: %d %s", body, r.Status, r.Body)
			}
			if n := len(item.FindAll(r.Body, -1)); n != 4 {
				t.Errorf("%s: %d items in transformers' shape: %s", body, n, r.Body)
			}
			for k, w := range g.TopK[i] {
				if got[0][k].Label != w.Label || math.Abs(got[0][k].Score-w.Score) > 1e-4 {
					t.Errorf("%q rank %d: %+v, want %+v", text, k, got[0][k], w)
				}
			}
			checkComputeHeaders(t, r, "cpu")
		}
	}
	r := st.Post(t, in.URL, `{"inputs":"A man is eating food.","parameters":{"top_k":2,"function_to_apply":"SIGMOID"}}`)
	var got [][]wireLabel
	if err := json.Unmarshal(r.Body, &got); r.Status != 200 || err != nil || len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if got[0][0].Label != "goodbye" || math.Abs(got[0][0].Score-1/(1+math.Exp(-g.Logits[0][1]))) > 1e-4 {
		t.Errorf("sigmoid top 1: %+v", got[0][0])
	}
	r = st.Post(t, in.URL, `{"inputs":"A man is eating food.","parameters":{"function_to_apply":"none","top_k":null}}`)
	if err := json.Unmarshal(r.Body, &got); r.Status != 200 || err != nil || len(got[0]) != 4 || math.Abs(got[0][0].Score-g.Logits[0][1]) > 1e-4 {
		t.Errorf("raw logits: %d %s", r.Status, r.Body)
	}
	// An empty text is classified (transformers runs [CLS] [SEP]).
	r = st.Post(t, in.URL, `{"inputs":""}`)
	if err := json.Unmarshal(r.Body, &got); r.Status != 200 || err != nil || len(got[0]) != 4 {
		t.Errorf("empty: %d %s", r.Status, r.Body)
	}
	long := strings.Repeat("pizza ", 1000)
	if r := st.Post(t, in.URL, `{"inputs":"`+long+`"}`); r.Status != 200 {
		t.Errorf("long input (truncated by default): %d %s", r.Status, r.Body)
	}
	r = st.Post(t, in.URL, `{"inputs":"`+long+`","parameters":{"truncation":false}}`)
	if r.Status != 400 || !strings.HasPrefix(string(r.Body), "{\"error\":\"`inputs` must have less than 512 tokens. Given: ") {
		t.Errorf("long input without truncation: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct{ body, want string }{
		{`{"inputs":"x","parameters":{"top_k":0}}`, "{\"error\":\"`top_k` must be a positive integer\"}"},
		{`{"inputs":"x","parameters":{"top_k":"a"}}`, "{\"error\":\"`top_k` must be a positive integer\"}"},
		{`{"inputs":"x","parameters":{"function_to_apply":"relu"}}`, "{\"error\":\"`function_to_apply` must be one of \\\"sigmoid\\\", \\\"softmax\\\", \\\"none\\\"\"}"},
		{`{"inputs":"x","parameters":{"truncation":"yes"}}`, "{\"error\":\"`truncation` must be a boolean\"}"},
		{`{"inputs":"x","parameters":{"aggregation_strategy":"simple"}}`, `{"error":"__call__() got an unexpected keyword argument 'aggregation_strategy'"}`},
		{`{"inputs":["a"]}`, "{\"error\":[\"Input should be a valid string: received `['a']` in `parameters`\"]}"},
		{"\xc3\x28", `{"error":"'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"}`},
	} {
		expectJSON(t, st.Post(t, in.URL, c.body), 400, c.want)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestTEIPredict(t *testing.T) {
	var g classifierFixture
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &g)
	in := serveReal(t, loadReal(t, "tiny-bert-classifier", pipelines.LoadOptions{}), func(c *server.Config) { c.MaxClientBatchSize = 3 })
	type pred struct {
		Score float64 `json:"score"`
		Label string  `json:"label"`
	}
	shape := regexp.MustCompile(`^\[\{"score":[0-9.e-]+,"label":"[a-z_]+"\}(,\{"score":[0-9.e-]+,"label":"[a-z_]+"\}){3}\]$`)
	r := st.Post(t, in.URL+"/predict", `{"inputs":`+jsonString(g.Texts[0])+`}`)
	var one []pred
	if err := json.Unmarshal(r.Body, &one); r.Status != 200 || err != nil || !shape.Match(r.Body) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	for k, w := range g.TopK[0] {
		if one[k].Label != w.Label || math.Abs(one[k].Score-w.Score) > 1e-4 {
			t.Errorf("rank %d: %+v, want %+v", k, one[k], w)
		}
	}
	if r.Header.Get("x-compute-characters") != fmt.Sprint(len(g.Texts[0])) || r.Header.Get("x-compute-tokens") == "" {
		t.Errorf("headers %v", r.Header)
	}
	// A batch: a single string and a pair, each its own list; a pair alone is one input.
	r = st.Post(t, in.URL+"/predict", `{"inputs":[[`+jsonString(g.Texts[0])+`],["I want pizza","cancel it"]]}`)
	var batch [][]pred
	if err := json.Unmarshal(r.Body, &batch); r.Status != 200 || err != nil || len(batch) != 2 {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	if batch[0][0] != one[0] {
		t.Errorf("batched %+v, alone %+v", batch[0][0], one[0])
	}
	r = st.Post(t, in.URL+"/predict", `{"inputs":["I want pizza","cancel it"]}`)
	var pair []pred
	if err := json.Unmarshal(r.Body, &pair); r.Status != 200 || err != nil || pair[0] != batch[1][0] {
		t.Errorf("pair: %d %s, batch %+v", r.Status, r.Body, batch[1])
	}
	// raw_scores: the logits.
	r = st.Post(t, in.URL+"/predict", `{"inputs":`+jsonString(g.Texts[0])+`,"raw_scores":true,"truncate":false,"truncation_direction":"left"}`)
	if err := json.Unmarshal(r.Body, &one); r.Status != 200 || err != nil || one[0].Label != "goodbye" || math.Abs(one[0].Score-g.Logits[0][1]) > 1e-4 {
		t.Errorf("raw scores: %d %s", r.Status, r.Body)
	}
	expect := "a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], [string, string], ...]"
	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"inputs":""}`, 400, "{\"error\":\"Input validation error: `inputs` cannot be empty\",\"error_type\":\"Empty\"}"},
		{`{"inputs":[["a"],["",""]]}`, 400, "{\"error\":\"Input validation error: `inputs` cannot be empty\",\"error_type\":\"Empty\"}"},
		{`{"inputs":[]}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid length 0, expected ` + expect + `","error_type":"Validation"}`},
		{`{"inputs":["a","b","c"]}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid length 3, expected ` + expect + `","error_type":"Validation"}`},
		{`{"inputs":[["a","b","c"]]}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid length 3, expected ` + expect + `","error_type":"Validation"}`},
		{`{"inputs":["a",1]}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid type: integer, expected a string","error_type":"Validation"}`},
		{`{"inputs":[["a"],"b"]}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid type: string, expected a sequence","error_type":"Validation"}`},
		{`{"inputs":7}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: inputs: invalid type: integer, expected ` + expect + `","error_type":"Validation"}`},
		{`{"input":"a"}`, 422, "{\"error\":\"Failed to deserialize the JSON body into the target type: missing field `inputs`\",\"error_type\":\"Validation\"}"},
		{`{"inputs":"a","raw_scores":1}`, 422, `{"error":"Failed to deserialize the JSON body into the target type: raw_scores: invalid type: integer, expected a boolean","error_type":"Validation"}`},
		{`{"inputs":[["a"],["b"],["c"],["d"]]}`, 422, `{"error":"batch size 4 > maximum allowed batch size 3","error_type":"Validation"}`},
	} {
		expectJSON(t, st.Post(t, in.URL+"/predict", c.body), c.status, c.want)
	}
	r = st.Post(t, in.URL+"/predict", `{"inputs":"`+strings.Repeat("pizza ", 600)+`","truncate":false}`)
	if r.Status != 422 || !strings.HasPrefix(string(r.Body), "{\"error\":\"Input validation error: `inputs` must have less than 512 tokens. Given: ") {
		t.Errorf("long input without truncation: %d %s", r.Status, r.Body)
	}
	if r := st.Post(t, in.URL+"/predict", `{"inputs":"`+strings.Repeat("pizza ", 600)+`"}`); r.Status != 200 {
		t.Errorf("long input, truncated by default: %d %s", r.Status, r.Body)
	}
}

// TestTEIPredictOnOtherModels: /predict needs a text classifier (TEI answers 424).
func TestTEIPredictOnOtherModels(t *testing.T) {
	in := serveReal(t, loadReal(t, "tiny-bert-ner", pipelines.LoadOptions{}))
	expectJSON(t, st.Post(t, in.URL+"/predict", `{"inputs":"a"}`), 424, `{"error":"Backend error: Model is not a classifier model","error_type":"Backend"}`)
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"a"}`), 424, `{"error":"Backend error: Model is not an embedding model","error_type":"Backend"}`)
}

// TestClassificationConcurrentEqualsSequential: many clients at once (their requests share
// batches in the scheduler) get the answers they get one at a time.
func TestClassificationConcurrentEqualsSequential(t *testing.T) {
	g := loadNERFixture(t)
	var cg classifierFixture
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &cg)
	ner := serveReal(t, loadReal(t, "tiny-bert-ner", pipelines.LoadOptions{Sessions: 2, Sched: sched.Config{Workers: 2}}))
	cls := serveReal(t, loadReal(t, "tiny-bert-classifier", pipelines.LoadOptions{Sessions: 2, Sched: sched.Config{Workers: 2}}))
	type req struct{ url, body string }
	var reqs []req
	for _, s := range []string{"none", "simple", "first", "average", "max"} {
		for _, text := range g.Texts {
			b, _ := json.Marshal(map[string]any{"inputs": text, "parameters": map[string]any{"aggregation_strategy": s}})
			reqs = append(reqs, req{ner.URL, string(b)})
		}
	}
	for _, text := range cg.Texts {
		reqs = append(reqs, req{cls.URL, jsonString(text)}, req{cls.URL + "/predict", `{"inputs":` + jsonString(text) + `}`})
	}
	sequential := make([]string, len(reqs))
	for i, r := range reqs {
		sequential[i] = string(st.Post(t, r.url, r.body).Body)
	}
	var wg sync.WaitGroup
	for round := 0; round < 3; round++ {
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := st.DoErr("POST", r.url, []byte(r.body))
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Status != 200 || !sameWithin(t, resp.Body, []byte(sequential[i])) {
					t.Errorf("%s %.60s: concurrent %d %s, sequential %s", r.url, r.body, resp.Status, resp.Body, sequential[i])
				}
			}()
		}
	}
	wg.Wait()
}

// sameWithin compares two JSON bodies: equal structure and strings, numbers within 1e-6
// (a sequence padded into a batch may differ from itself alone in the last float bits).
func sameWithin(t *testing.T, a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	var eq func(x, y any) bool
	eq = func(x, y any) bool {
		switch x := x.(type) {
		case float64:
			y, ok := y.(float64)
			return ok && math.Abs(x-y) <= 1e-6
		case []any:
			y, ok := y.([]any)
			if !ok || len(x) != len(y) {
				return false
			}
			for i := range x {
				if !eq(x[i], y[i]) {
					return false
				}
			}
			return true
		case map[string]any:
			y, ok := y.(map[string]any)
			if !ok || len(x) != len(y) {
				return false
			}
			for k := range x {
				if !eq(x[k], y[k]) {
					return false
				}
			}
			return true
		}
		return x == y
	}
	return eq(x, y)
}

// TestClassificationOverloaded: a full scheduler answers 429 at once on every route.
func TestClassificationOverloaded(t *testing.T) {
	m := loadReal(t, "tiny-bert-classifier", pipelines.LoadOptions{})
	m.TextClassifier = overloaded{}
	in := serveReal(t, m)
	r := st.Post(t, in.URL, `{"inputs":"x"}`)
	expectJSON(t, r, 429, `{"error":"Model is overloaded"}`)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	expectJSON(t, st.Post(t, in.URL+"/predict", `{"inputs":"x"}`), 429, `{"error":"Model is overloaded","error_type":"Overloaded"}`)

	n := loadReal(t, "tiny-bert-ner", pipelines.LoadOptions{})
	n.TokenClassifier = overloaded{}
	in = serveReal(t, n)
	expectJSON(t, st.Post(t, in.URL, `{"inputs":"x"}`), 429, `{"error":"Model is overloaded"}`)
}

// overloaded answers like a pipeline whose scheduler refused admission.
type overloaded struct{}

func (overloaded) ClassifyTokens(context.Context, []string, pipelines.TokenClassifyOptions) ([][]pipelines.Entity, pipelines.Stats, error) {
	return nil, pipelines.Stats{}, fmt.Errorf("pipelines: %w", sched.ErrOverloaded)
}

func (overloaded) Classify(context.Context, []pipelines.TextInput, pipelines.TextClassifyOptions) ([][]pipelines.LabelScore, pipelines.Stats, error) {
	return nil, pipelines.Stats{}, fmt.Errorf("pipelines: %w", sched.ErrOverloaded)
}
