package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

const dim = 8

// startWith serves model (already loaded) with task.
func startWith(t *testing.T, task string, m *st.Model, mutate ...func(*server.Config)) *st.Instance {
	t.Helper()
	cfg := server.Config{Task: task, Load: func(context.Context) (*pipelines.Model, error) { return m.Model, nil }}
	for _, f := range mutate {
		f(&cfg)
	}
	in := st.Start(t, cfg)
	waitHealthy(t, in.URL)
	return in
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := st.DoErr(http.MethodGet, url+"/health", nil); err == nil && r.Status == 200 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("server never became healthy")
}

// pyFloats formats v as Python's json.dumps of numpy float32 .tolist() would.
func pyFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = pyRepr(float64(x))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// pyRepr is an independent (slow) Python repr(float): shortest round-trip digits via 'g'.
func pyRepr(x float64) string {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if strings.ContainsAny(s, "e") {
		mant, exp, _ := strings.Cut(s, "e")
		n, _ := strconv.Atoi(exp)
		if n >= -5 && n < 16 { // Python switches to fixed notation here; 'g' does not
			return strconv.FormatFloat(x, 'f', -1, 64) + dotZero(strconv.FormatFloat(x, 'f', -1, 64))
		}
		sign := "+"
		if n < 0 {
			sign, n = "-", -n
		}
		return mant + "e" + sign + leftPad2(n)
	}
	return s + dotZero(s)
}

func dotZero(s string) string {
	if strings.Contains(s, ".") {
		return ""
	}
	return ".0"
}

func leftPad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

var computeTime = regexp.MustCompile(`^\d+\.\d{3}$`)

func checkComputeHeaders(t *testing.T, r *st.Response, computeType string) {
	t.Helper()
	if !computeTime.MatchString(r.Header.Get("x-compute-time")) {
		t.Errorf("x-compute-time %q", r.Header.Get("x-compute-time"))
	}
	if got := r.Header.Get("x-compute-type"); got != computeType {
		t.Errorf("x-compute-type %q, want %q", got, computeType)
	}
	if got := r.Header.Get("access-control-expose-headers"); got != "x-compute-type, x-compute-time" {
		t.Errorf("access-control-expose-headers %q", got)
	}
}

func checkNoComputeHeaders(t *testing.T, r *st.Response) {
	t.Helper()
	for _, h := range []string{"x-compute-time", "x-compute-type", "x-compute-characters", "access-control-expose-headers"} {
		if r.Header.Get(h) != "" {
			t.Errorf("early error carries %s", h)
		}
	}
}

func expectJSON(t *testing.T, r *st.Response, status int, body string) {
	t.Helper()
	if r.Status != status || string(r.Body) != body {
		t.Errorf("got %d %s\nwant %d %s", r.Status, r.Body, status, body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
}

func TestAICGetAndMethods(t *testing.T) {
	in := startWith(t, "feature-extraction", st.NewModel("m", "feature-extraction", dim))
	for _, p := range []string{"/", "/anything/else", "/pipeline/feature-extraction/x"} {
		expectJSON(t, st.Get(t, in.URL+p), 200, `{"ok":"ok"}`)
	}
	r := st.Do(t, http.MethodHead, in.URL+"/", nil)
	if r.Status != 200 || len(r.Body) != 0 {
		t.Errorf("HEAD: %d %q", r.Status, r.Body)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		r := st.Do(t, m, in.URL+"/", []byte("x"))
		if r.Status != 405 || r.Header.Get("Allow") == "" {
			t.Errorf("%s: %d allow=%q", m, r.Status, r.Header.Get("Allow"))
		}
	}
	if id := st.Get(t, in.URL+"/", "x-request-id", "abc-123").Header.Get("x-request-id"); id != "abc-123" {
		t.Errorf("request id not echoed: %q", id)
	}
	if id := st.Get(t, in.URL+"/").Header.Get("x-request-id"); id == "" {
		t.Error("no request id generated")
	}
}

func TestAICFeatureExtraction(t *testing.T) {
	m := st.NewModel("org/fe", "feature-extraction", dim)
	in := startWith(t, "", m, func(c *server.Config) { c.ComputeType = "gpu" })
	want := pyFloats(st.Normalized(st.Vector("Some", dim)))
	for _, path := range []string{"/", "/pipeline/feature-extraction/org/fe", "/models/org/fe"} {
		for _, body := range []string{`{"inputs":"Some"}`, `"Some"`, `Some`} {
			r := st.Post(t, in.URL+path, body)
			expectJSON(t, r, 200, want) // T-FE-1: flat float array, byte-identical to Python
			checkComputeHeaders(t, r, "gpu")
			if r.Header.Get("x-compute-characters") != "4" {
				t.Errorf("x-compute-characters %q", r.Header.Get("x-compute-characters"))
			}
		}
	}
	// T-FE-2: a list gives one vector per string.
	r := st.Post(t, in.URL, `{"inputs":["hugging","face"]}`)
	expectJSON(t, r, 200, "["+pyFloats(st.Normalized(st.Vector("hugging", dim)))+","+pyFloats(st.Normalized(st.Vector("face", dim)))+"]")
	if r.Header.Get("x-compute-characters") != "11" {
		t.Errorf("chars %q", r.Header.Get("x-compute-characters"))
	}
	// é counts once and comes back unescaped (here through the error echo path).
	r = st.Post(t, in.URL, `{"inputs":"été"}`)
	if r.Status != 200 || r.Header.Get("x-compute-characters") != "3" {
		t.Errorf("été: %d chars %q", r.Status, r.Header.Get("x-compute-characters"))
	}
	// parameters reach the pipeline.
	st.Post(t, in.URL, `{"inputs":"x","parameters":{"normalize":false,"truncate":false,"truncation_direction":"left","dimensions":4}}`)
	o := m.Embedder.LastOptions()
	if o.Normalize == nil || *o.Normalize || o.Truncate || o.TruncationDirection != pipelines.TruncateLeft || o.Dimensions != 4 {
		t.Errorf("options %+v", o)
	}
	expectJSON(t, st.Post(t, in.URL, `{"inputs":"x","normalize":false,"dimensions":3}`), 200, pyFloats(st.Vector("x", dim)[:3]))
}

func TestAICFeatureExtractionTokenLevel(t *testing.T) {
	m := st.NewModel("plain", "feature-extraction", dim)
	m.Info.Pooling = "" // a plain transformers repo
	in := startWith(t, "feature-extraction", m)
	tok := func(text string) string {
		var rows []string
		for _, w := range st.Words(text) {
			rows = append(rows, pyFloats(st.Vector(w, dim)))
		}
		return "[[" + strings.Join(rows, ",") + "]]" // [1][tokens][hidden]
	}
	expectJSON(t, st.Post(t, in.URL, `"a b"`), 200, tok("a b"))
	expectJSON(t, st.Post(t, in.URL, `["a b","c"]`), 200, "["+tok("a b")+","+tok("c")+"]")
}

func TestAICFeatureExtractionErrors(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	in := startWith(t, "feature-extraction", m, func(c *server.Config) { c.MaxClientBatchSize = 3 })
	// exact UTF-8 message, no x-compute-* headers.
	r := st.Post(t, in.URL, "\xc3\x28")
	expectJSON(t, r, 400, `{"error":"'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"}`)
	checkNoComputeHeaders(t, r)
	// T-FE-3, T-FE-4: schema errors are lists ending in "in `parameters`".
	for body, want := range map[string]string{
		`{"inputs":[]}`:   "{\"error\":[\"Value error, The inputs are invalid, at least one input is required: received `[]` in `parameters`\"]}",
		`["a",[1]]`:       "{\"error\":[\"Input should be a valid string: received `list[str]` in `parameters`\",\"Input should be a valid string: received `str` in `parameters`\"]}",
		`{"inputs":null}`: "{\"error\":[\"Input should be a valid list: received `list[str]` in `parameters`\",\"Input should be a valid string: received `str` in `parameters`\"]}",
	} {
		r := st.Post(t, in.URL, body)
		expectJSON(t, r, 400, want)
		checkNoComputeHeaders(t, r)
	}
	// Step-9 errors are strings and carry the compute headers (A-09: unknown parameter → 400).
	for body, want := range map[string]string{
		`{"inputs":"x","parameters":{"foo":1}}`: `{"error":"__call__() got an unexpected keyword argument 'foo'"}`,
		`{"inputs":["a","b","c","d"]}`:          `{"error":"batch size 4 > maximum allowed batch size 3"}`,
	} {
		r := st.Post(t, in.URL, body)
		expectJSON(t, r, 400, want)
		checkComputeHeaders(t, r, "cpu")
		if r.Header.Get("x-compute-characters") != "" {
			t.Error("x-compute-characters on an error")
		}
	}
	r = st.Post(t, in.URL, `"x"`, "lora", "adapter")
	expectJSON(t, r, 400, `{"error":"__call__() got an unexpected keyword argument 'lora_adapter'"}`)
}

func TestAICPipelineErrors(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	var mode string
	m.Embedder.Hook = func(ctx context.Context, call string, texts []string) error {
		switch mode {
		case "validation":
			return pipelines.Invalidf("inputs", "`inputs` must have less than 512 tokens. Given: 600")
		case "empty":
			return pipelines.EmptyError("inputs", "`inputs` cannot be empty")
		case "overloaded":
			return errors.Join(errors.New("pipelines: admit"), sched.ErrOverloaded)
		case "closed":
			return sched.ErrClosed
		case "boom":
			return errors.New("onnxruntime: /secret/path exploded")
		case "panic":
			panic("pipeline bug")
		}
		return nil
	}
	in := startWith(t, "feature-extraction", m)
	for _, c := range []struct {
		mode, body string
		status     int
	}{
		{"validation", `{"error":"` + "`inputs` must have less than 512 tokens. Given: 600" + `"}`, 400},
		{"empty", "{\"error\":\"`inputs` cannot be empty\"}", 400},
		{"overloaded", `{"error":"Model is overloaded"}`, 429},
		{"closed", `{"error":"Model is not available"}`, 503},
		{"boom", `{"error":"unknown error"}`, 500}, // detail only in the log
		{"panic", `{"error":"unknown error"}`, 500},
	} {
		mode = c.mode
		t0 := time.Now()
		r := st.Post(t, in.URL, `"x"`)
		expectJSON(t, r, c.status, c.body)
		if c.mode != "panic" {
			checkComputeHeaders(t, r, "cpu")
		}
		if c.status == 429 {
			if r.Header.Get("Retry-After") == "" || time.Since(t0) > time.Second {
				t.Errorf("429 must be immediate with Retry-After (%v, %q)", time.Since(t0), r.Header.Get("Retry-After"))
			}
		}
	}
	mode = ""
	expectJSON(t, st.Post(t, in.URL, `"x"`), 200, pyFloats(st.Normalized(st.Vector("x", dim))))
}

// nanEmbedder returns a NaN, which JSON cannot carry.
type nanEmbedder struct{ st.Embedder }

func (e *nanEmbedder) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	return [][]float32{{1, float32(math.NaN())}}, pipelines.Stats{}, nil
}

func TestAICNonFiniteOutput(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	m.Model.Embedder = &nanEmbedder{}
	in := startWith(t, "feature-extraction", m)
	expectJSON(t, st.Post(t, in.URL, `"x"`), 500, `{"error":"unknown error"}`)
}

func TestAICSentenceSimilarity(t *testing.T) {
	m := st.NewModel("m", "sentence-similarity", dim)
	in := startWith(t, "sentence-similarity", m)
	v := func(s string) []float32 { return st.Vector(s, dim) }
	want := pyFloats([]float32{st.Cosine(v("a"), v("a")), st.Cosine(v("a"), v("b c"))})
	for _, body := range []string{
		`{"inputs":{"source_sentence":"a","sentences":["a","b c"]}}`,
		`{"source_sentence":"a","sentences":["a","b c"]}`,
	} {
		r := st.Post(t, in.URL+"/pipeline/sentence-similarity/m", body)
		expectJSON(t, r, 200, want)
		checkComputeHeaders(t, r, "cpu")
		if r.Header.Get("x-compute-characters") != "5" {
			t.Errorf("chars %q", r.Header.Get("x-compute-characters"))
		}
		// T-SS-1: all floats, the identical sentence ≈ 1.
		var got []any
		if err := json.Unmarshal(r.Body, &got); err != nil || len(got) != 2 {
			t.Fatalf("%s: %v", r.Body, err)
		}
		if math.Abs(got[0].(float64)-1) > 1e-3 || !strings.Contains(strings.Split(string(r.Body), ",")[0], ".") {
			t.Errorf("identical sentence: %s", r.Body)
		}
	}
	expectJSON(t, st.Post(t, in.URL, `{"inputs":{"source_sentence":"a"}}`), 400, "{\"error\":[\"Field required: received `sentences` in `parameters`\"]}")
	r := st.Post(t, in.URL, `{"inputs":{"source_sentence":"a","sentences":[]}}`)
	expectJSON(t, r, 400, "{\"error\":\"`inputs.sentences` cannot be empty\"}")
	checkComputeHeaders(t, r, "cpu")
	expectJSON(t, st.Post(t, in.URL, "\xc3\x28"), 400, `{"error":"'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"}`)
	st.Post(t, in.URL, `{"inputs":{"source_sentence":"a","sentences":["b"]},"parameters":{"truncation_direction":"left"}}`)
	if o := m.Embedder.LastOptions(); o.TruncationDirection != pipelines.TruncateLeft || !o.Truncate {
		t.Errorf("options %+v", o)
	}
	expectJSON(t, st.Post(t, in.URL, `{"inputs":{"source_sentence":"a","sentences":["b"]},"parameters":{"normalize":true}}`),
		400, `{"error":"__call__() got an unexpected keyword argument 'normalize'"}`)
}

func TestAICTaskErrors(t *testing.T) {
	m := st.NewModel("org/m", "feature-extraction", dim)
	// TASK=invalid → 400 at once, even while the model loads; GET still answers.
	block := make(chan struct{})
	defer close(block)
	in := st.Start(t, server.Config{Task: "invalid", Load: func(ctx context.Context) (*pipelines.Model, error) {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil, errors.New("never")
	}})
	r := st.Post(t, in.URL, "")
	expectJSON(t, r, 400, "{\"error\":\"The task `invalid` is not recognized by api-inference-community\"}")
	checkNoComputeHeaders(t, r)
	expectJSON(t, st.Post(t, in.URL, "x"), 400, "{\"error\":\"The task `invalid` is not recognized by api-inference-community\"}")
	expectJSON(t, st.Get(t, in.URL+"/"), 200, `{"ok":"ok"}`)
	// translation is missing from KNOWN_TASKS upstream.
	in2 := startWith(t, "translation", m)
	expectJSON(t, st.Post(t, in2.URL, "x"), 400, "{\"error\":\"The task `translation` is not recognized by api-inference-community\"}")
	// A known task this server does not run → 500 "not a valid pipeline".
	in3 := startWith(t, "text-generation", st.NewModel("org/m", "feature-extraction", dim))
	r = st.Post(t, in3.URL, "x")
	expectJSON(t, r, 500, `{"error":"text-generation is not a valid pipeline for model : org/m"}`)
	checkNoComputeHeaders(t, r)
}

func TestGzip(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", 256) // ~5 KB of floats
	in := startWith(t, "feature-extraction", m)
	r := st.Post(t, in.URL, `"x"`, "Accept-Encoding", "gzip")
	if r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("large body not gzipped (%d bytes)", len(r.Body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if string(plain) != pyFloats(st.Normalized(st.Vector("x", 256))) {
		t.Error("gzip body differs")
	}
	if r := st.Post(t, in.URL, `"x"`); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip without Accept-Encoding")
	}
	if r := st.Post(t, in.URL, `"x"`, "Accept-Encoding", "gzip;q=0, br"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 honoured")
	}
	if r := st.Get(t, in.URL+"/", "Accept-Encoding", "gzip"); r.Header.Get("Content-Encoding") != "" { // < 1000 bytes
		t.Error("small body gzipped")
	}
}

func TestBodyTooLarge(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	in := startWith(t, "feature-extraction", m, func(c *server.Config) { c.MaxBodyBytes = 1000 })
	big := `"` + strings.Repeat("a", 2000) + `"`
	expectJSON(t, st.Post(t, in.URL, big), 413, `{"error":"Payload too large: the request body exceeds 1000 bytes"}`)
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":`+big+`}`), 413, `{"error":"Payload too large: the request body exceeds 1000 bytes","error_type":"Validation"}`)
	expectJSON(t, st.Post(t, in.URL, `"ok"`), 200, pyFloats(st.Normalized(st.Vector("ok", dim))))
}

// TestAcceptance runs the reusable acceptance suite against the fakes; the end-to-end tests
// run the same suite against real models.
func TestAcceptance(t *testing.T) {
	for _, task := range []string{"feature-extraction", "sentence-similarity"} {
		t.Run(task, func(t *testing.T) {
			in := startWith(t, task, st.NewModel("m", task, dim))
			st.Acceptance(t, in.URL, task, dim)
		})
	}
}
