package server_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

// shortFloats formats v as TEI does: shortest float32 digits (Python layout).
func shortFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		s := strconv.FormatFloat(float64(x), 'g', -1, 32)
		if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, ".e") {
			s = strconv.FormatFloat(f, 'f', 1, 64)
		}
		parts[i] = s
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func checkTEIHeaders(t *testing.T, r *st.Response, chars, tokens int) {
	t.Helper()
	for _, h := range []string{"x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time"} {
		if _, err := strconv.Atoi(r.Header.Get(h)); err != nil {
			t.Errorf("%s = %q, want integer milliseconds", h, r.Header.Get(h))
		}
	}
	if r.Header.Get("x-tokenization-time") != "2" || r.Header.Get("x-queue-time") != "3" || r.Header.Get("x-inference-time") != "4" {
		t.Errorf("stage headers %q %q %q", r.Header.Get("x-tokenization-time"), r.Header.Get("x-queue-time"), r.Header.Get("x-inference-time"))
	}
	if got := r.Header.Get("x-compute-characters"); got != strconv.Itoa(chars) {
		t.Errorf("x-compute-characters %q, want %d", got, chars)
	}
	if got := r.Header.Get("x-compute-tokens"); got != strconv.Itoa(tokens) {
		t.Errorf("x-compute-tokens %q, want %d", got, tokens)
	}
	if r.Header.Get("x-compute-type") != "cpu" {
		t.Errorf("x-compute-type %q", r.Header.Get("x-compute-type"))
	}
}

func TestTEIEmbed(t *testing.T) {
	m := st.NewModel("org/emb", "feature-extraction", dim)
	in := startWith(t, "", m, func(c *server.Config) { c.MaxClientBatchSize = 2 })
	n := func(s string) []float32 { return st.Normalized(st.Vector(s, dim)) }
	// Always 2-D, shortest float32 digits.
	r := st.Post(t, in.URL+"/embed", `{"inputs":"a b"}`)
	expectJSON(t, r, 200, "["+shortFloats(n("a b"))+"]")
	checkTEIHeaders(t, r, 3, 4)
	r = st.Post(t, in.URL+"/embed", `{"inputs":["a","é"]}`)
	expectJSON(t, r, 200, "["+shortFloats(n("a"))+","+shortFloats(n("é"))+"]")
	checkTEIHeaders(t, r, 2, 6)
	// normalize defaults to true; options reach the pipeline.
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"a","normalize":false,"dimensions":3,"truncate":false,"truncation_direction":"Left"}`),
		200, "["+shortFloats(st.Vector("a", dim)[:3])+"]")
	if o := m.Embedder.LastOptions(); o.Truncate || o.TruncationDirection != pipelines.TruncateLeft || o.Dimensions != 3 || o.Normalize == nil || *o.Normalize {
		t.Errorf("options %+v", o)
	}
	st.Post(t, in.URL+"/embed", `{"inputs":"a"}`)
	if o := m.Embedder.LastOptions(); !o.Truncate || o.Normalize == nil || !*o.Normalize {
		t.Errorf("default options %+v", o)
	}
	for body, want := range map[string]struct {
		status int
		body   string
	}{
		`{"inputs":[]}`:                    {400, "{\"error\":\"`inputs` cannot be empty\",\"error_type\":\"Empty\"}"},
		`{"inputs":["a","b","c"]}`:         {422, `{"error":"batch size 3 > maximum allowed batch size 2","error_type":"Validation"}`},
		`{"inputs":[1,2,3]}`:               {422, `{"error":"token ids as inputs are not supported by this server","error_type":"Validation"}`},
		`{"inputs":"a","prompt_name":"q"}`: {422, "{\"error\":\"`prompt_name` is not supported by this server\",\"error_type\":\"Validation\"}"},
		`{"input":"a"}`:                    {422, "{\"error\":\"Failed to deserialize the JSON body into the target type: missing field `inputs`\",\"error_type\":\"Validation\"}"},
		`{"inputs":"a","normalize":1}`:     {422, `{"error":"Failed to deserialize the JSON body into the target type: normalize: invalid type: integer, expected a boolean","error_type":"Validation"}`},
		`{"inputs":"a","dimensions":0}`:    {422, "{\"error\":\"`dimensions` must be a positive integer\",\"error_type\":\"Validation\"}"},
		`{"inputs":`:                       {400, `{"error":"Failed to parse the request body as JSON: unexpected end of input at offset 10","error_type":"Validation"}`},
		`[1]`:                              {422, `{"error":"Failed to deserialize the JSON body into the target type: invalid type: sequence, expected a JSON object","error_type":"Validation"}`},
		"{\"inputs\":\"\xff\"}":            {400, `{"error":"Failed to parse the request body as JSON: invalid UTF-8","error_type":"Validation"}`},
	} {
		expectJSON(t, st.Post(t, in.URL+"/embed", body), want.status, want.body)
	}
}

func TestTEIPipelineErrors(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	var fail error
	m.Embedder.Hook = func(context.Context, string, []string) error { return fail }
	in := startWith(t, "", m)
	for _, c := range []struct {
		err    error
		status int
		body   string
	}{
		{pipelines.Invalidf("inputs", "`inputs` must have less than 512 tokens. Given: 600"), 422,
			"{\"error\":\"Input validation error: `inputs` must have less than 512 tokens. Given: 600\",\"error_type\":\"Validation\"}"},
		{pipelines.EmptyError("inputs", "`inputs` cannot be empty"), 400,
			"{\"error\":\"Input validation error: `inputs` cannot be empty\",\"error_type\":\"Empty\"}"},
		{sched.ErrOverloaded, 429, `{"error":"Model is overloaded","error_type":"Overloaded"}`},
		{errors.New("ort: boom"), 424, `{"error":"Backend error: inference failed","error_type":"Backend"}`},
	} {
		fail = c.err
		expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"a"}`), c.status, c.body)
	}
	fail = sched.ErrOverloaded
	r := st.Post(t, in.URL+"/v1/embeddings", `{"input":"a"}`)
	expectJSON(t, r, 429, `{"message":"Model is overloaded","code":429,"type":"Overloaded"}`)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestTEIEmbedAllAndSimilarity(t *testing.T) {
	m := st.NewModel("m", "sentence-similarity", dim)
	in := startWith(t, "", m, func(c *server.Config) { c.MaxClientBatchSize = 3 })
	var rows []string
	for _, w := range st.Words("a") {
		rows = append(rows, shortFloats(st.Vector(w, dim)))
	}
	expectJSON(t, st.Post(t, in.URL+"/embed_all", `{"inputs":"a"}`), 200, "[["+strings.Join(rows, ",")+"]]")

	v := func(s string) []float32 { return st.Vector(s, dim) }
	r := st.Post(t, in.URL+"/similarity", `{"inputs":{"source_sentence":"a","sentences":["a","b"]},"parameters":{"truncation_direction":"left"}}`)
	expectJSON(t, r, 200, shortFloats([]float32{st.Cosine(v("a"), v("a")), st.Cosine(v("a"), v("b"))}))
	checkTEIHeaders(t, r, 3, 9)
	if o := m.Embedder.LastOptions(); o.TruncationDirection != pipelines.TruncateLeft {
		t.Errorf("options %+v", o)
	}
	expectJSON(t, st.Post(t, in.URL+"/similarity", `{"inputs":{"source_sentence":"a","sentences":[]}}`),
		400, "{\"error\":\"`inputs.sentences` cannot be empty\",\"error_type\":\"Empty\"}")
	expectJSON(t, st.Post(t, in.URL+"/similarity", `{"inputs":{"source_sentence":"a","sentences":["b","c","d"]}}`),
		422, `{"error":"batch size 4 > maximum allowed batch size 3","error_type":"Validation"}`)
	expectJSON(t, st.Post(t, in.URL+"/similarity", `{"inputs":{"sentences":["b"]}}`),
		422, "{\"error\":\"Failed to deserialize the JSON body into the target type: inputs: missing field `source_sentence`\",\"error_type\":\"Validation\"}")
}

func TestTEITokenizeDecode(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	in := startWith(t, "", m)
	id := st.WordID
	r := st.Post(t, in.URL+"/tokenize", `{"inputs":"hi  é"}`)
	expectJSON(t, r, 200, `[[{"id":101,"text":"[CLS]","special":true,"start":null,"stop":null},`+
		`{"id":`+strconv.Itoa(int(id("hi")))+`,"text":"hi","special":false,"start":0,"stop":2},`+
		`{"id":`+strconv.Itoa(int(id("é")))+`,"text":"é","special":false,"start":4,"stop":6},`+
		`{"id":102,"text":"[SEP]","special":true,"start":null,"stop":null}]]`)
	r = st.Post(t, in.URL+"/tokenize", `{"inputs":["a","b"],"add_special_tokens":false}`)
	expectJSON(t, r, 200, `[[{"id":`+strconv.Itoa(int(id("a")))+`,"text":"a","special":false,"start":0,"stop":1}],`+
		`[{"id":`+strconv.Itoa(int(id("b")))+`,"text":"b","special":false,"start":0,"stop":1}]]`)
	expectJSON(t, st.Post(t, in.URL+"/tokenize", `{"inputs":[]}`), 400, "{\"error\":\"`inputs` cannot be empty\",\"error_type\":\"Empty\"}")

	expectJSON(t, st.Post(t, in.URL+"/decode", `{"ids":[101,1500,102]}`), 200, `["w1500"]`)
	expectJSON(t, st.Post(t, in.URL+"/decode", `{"ids":[[101,7],[8]],"skip_special_tokens":false}`), 200, `["[CLS] w7","w8"]`)
	expectJSON(t, st.Post(t, in.URL+"/decode", `{"ids":[]}`), 200, `[""]`)
	expectJSON(t, st.Post(t, in.URL+"/decode", `{"ids":[4294967296]}`), 422, `{"error":"token id 4294967296 is out of range","error_type":"Validation"}`)

	noTok := st.NewModel("m2", "feature-extraction", dim)
	noTok.Model.Tokenizer = nil
	in2 := startWith(t, "", noTok)
	expectJSON(t, st.Post(t, in2.URL+"/tokenize", `{"inputs":"a"}`), 424, `{"error":"Backend error: Model has no tokenizer","error_type":"Backend"}`)
}

func TestOpenAIEmbeddings(t *testing.T) {
	m := st.NewModel("org/emb", "feature-extraction", dim)
	in := startWith(t, "", m)
	n := func(s string) []float32 { return st.Normalized(st.Vector(s, dim)) }
	for _, path := range []string{"/v1/embeddings", "/embeddings"} {
		r := st.Post(t, in.URL+path, `{"input":["a","b c"],"model":"org/emb"}`)
		expectJSON(t, r, 200, `{"object":"list","data":[{"object":"embedding","embedding":`+shortFloats(n("a"))+`,"index":0},`+
			`{"object":"embedding","embedding":`+shortFloats(n("b c"))+`,"index":1}],"model":"org/emb","usage":{"prompt_tokens":7,"total_tokens":7}}`)
		checkTEIHeaders(t, r, 4, 7)
	}
	r := st.Post(t, in.URL+"/v1/embeddings", `{"input":"a","encoding_format":"base64","dimensions":4}`)
	var resp struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil || len(resp.Data) != 1 {
		t.Fatalf("%s: %v", r.Body, err)
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Data[0].Embedding)
	if err != nil || len(raw) != 16 {
		t.Fatalf("base64 %q: %v", resp.Data[0].Embedding, err)
	}
	want := st.Normalized(st.Vector("a", dim)[:4])
	for i := range want {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want[i] {
			t.Errorf("base64[%d] = %v, want %v", i, got, want[i])
		}
	}
	expectJSON(t, st.Post(t, in.URL+"/v1/embeddings", `{"input":[]}`), 400, "{\"message\":\"`inputs` cannot be empty\",\"code\":400,\"type\":\"Empty\"}")
	expectJSON(t, st.Post(t, in.URL+"/v1/embeddings", `{"input":"a","encoding_format":"hex"}`), 422,
		"{\"message\":\"Failed to deserialize the JSON body into the target type: encoding_format: unknown variant, expected `float` or `base64`\",\"code\":422,\"type\":\"Validation\"}")
	expectJSON(t, st.Post(t, in.URL+"/v1/embeddings", `nope`), 400,
		`{"message":"Failed to parse the request body as JSON: unexpected character at offset 0","code":400,"type":"Validation"}`)
}

func TestNotAnEmbeddingModel(t *testing.T) {
	m := st.NewModel("org/clf", "text-classification", dim)
	m.Model.Embedder = nil
	in := startWith(t, "", m)
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"a"}`), 424, `{"error":"Backend error: Model is not an embedding model","error_type":"Backend"}`)
	expectJSON(t, st.Post(t, in.URL, `"a"`), 500, `{"error":"text-classification is not a valid pipeline for model : org/clf"}`)
}

func TestInfoHealthMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := server.NewSchedObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := st.NewModel("org/emb", "feature-extraction", dim)
	in := startWith(t, "", m, func(c *server.Config) { c.Registry = reg; c.Version = "1.2.3" })
	expectJSON(t, st.Get(t, in.URL+"/info"), 200, `{"model_id":"org/emb","model_sha":"0123456789abcdef0123456789abcdef01234567",`+
		`"model_type":{"embedding":{"pooling":"mean"}},"task":"feature-extraction","dimensions":8,"max_input_length":512,`+
		`"pooling":"mean","normalize":true,"max_concurrent_requests":512,"max_batch_tokens":8192,"max_batch_requests":128,`+
		`"max_client_batch_size":32,"auto_truncate":true,"payload_limit":2000000,"request_timeout_ms":60000,"device":"cpu",`+
		`"compute_type":"cpu","version":"1.2.3"}`)
	r := st.Get(t, in.URL+"/health")
	if r.Status != 200 || len(r.Body) != 0 {
		t.Errorf("health %d %q", r.Status, r.Body)
	}
	st.Post(t, in.URL+"/embed", `{"inputs":"a"}`)
	obs.Rejected()
	obs.Dropped()
	obs.Queued(0)
	obs.Batch(sched.BatchStats{Size: 4, Tokens: 30, PaddedTokens: 40, Dispatch: 2 * time.Millisecond})
	r = st.Get(t, in.URL+"/metrics")
	body := string(r.Body)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`infergo_http_requests_total{code="200",route="POST /embed"} 1`,
		`infergo_http_request_duration_seconds_count{route="POST /embed"} 1`,
		`infergo_request_tokenization_duration_seconds_count 1`,
		`infergo_request_queue_duration_seconds_count 1`,
		`infergo_request_inference_duration_seconds_count 1`,
		`infergo_sched_rejected_total 1`,
		`infergo_sched_dropped_total 1`,
		`infergo_sched_queue_duration_seconds_count 1`,
		`infergo_sched_batch_size_sum 4`,
		`infergo_sched_batch_tokens_sum 30`,
		`infergo_sched_batch_padding_ratio_sum 0.25`,
		`infergo_sched_dispatch_wait_seconds_sum 0.002`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
