package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	itest "github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

type gptCase struct {
	Prompt        string  `json:"prompt"`
	PromptIDs     []int32 `json:"prompt_ids"`
	NewIDs        []int32 `json:"new_ids"`
	GeneratedText string  `json:"generated_text"`
	NewText       string  `json:"new_text"`
}

func gptGolden(t *testing.T) []gptCase {
	var g struct {
		Greedy []gptCase `json:"greedy"`
	}
	itest.LoadJSON(t, itest.Fixture("tiny-gpt2", "golden.json"), &g)
	return g.Greedy
}

// slowOpener wraps sessions so every Run takes at least delay: long enough generations for
// disconnect tests to act mid-way.
type slowOpener struct {
	runtime.Opener
	delay time.Duration
}

type slowSession struct {
	runtime.Session
	delay time.Duration
}

func (o slowOpener) Open(ctx context.Context, path string, opts runtime.Options) (runtime.Session, error) {
	s, err := o.Opener.Open(ctx, path, opts)
	if err != nil || o.delay == 0 {
		return s, err
	}
	return slowSession{s, o.delay}, nil
}

func (s slowSession) Run(ctx context.Context, in, out []runtime.Tensor) error {
	time.Sleep(s.delay)
	return s.Session.Run(ctx, in, out)
}

type genServer struct {
	*st.Instance
	reg *prometheus.Registry
}

// startGPT serves the tiny-gpt2 fixture for text-generation.
func startGPT(t *testing.T, delay time.Duration, maxRequests int) *genServer {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(itest.Fixture("tiny-gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	obs, err := server.NewDecodeObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := st.Start(t, server.Config{
		Task:     pipelines.TaskTextGeneration,
		Registry: reg,
		Load: func(ctx context.Context) (*pipelines.Model, error) {
			return pipelines.Load(ctx, repo, pipelines.LoadOptions{
				Opener:  slowOpener{env, delay},
				Runtime: runtime.Options{IntraOpThreads: 1},
				Sched:   sched.Config{MaxConcurrentRequests: maxRequests},
				Decode:  sched.DecodeConfig{Observer: obs},
				Logger:  quiet,
			})
		},
	})
	waitHealthy(t, in.URL)
	return &genServer{in, reg}
}

func TestAICTextGeneration(t *testing.T) {
	g := startGPT(t, 0, 0)
	for _, c := range gptGolden(t) {
		body, _ := json.Marshal(map[string]any{"inputs": c.Prompt})
		r := st.Post(t, g.URL+"/", string(body))
		want, _ := json.Marshal([]map[string]string{{"generated_text": c.GeneratedText}})
		// Python's json.dumps keeps non-ASCII as is, like encoding/json with HTML escaping
		// off; compare decoded values to stay independent of escaping.
		var got []map[string]string
		if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil || len(got) != 1 || got[0]["generated_text"] != c.GeneratedText {
			t.Errorf("%q: %d %s, want %s", c.Prompt, r.Status, r.Body, want)
		}
		if r.Header.Get("x-compute-characters") != fmt.Sprint(len([]rune(c.Prompt))) || r.Header.Get("x-compute-type") != "cpu" {
			t.Errorf("headers %v", r.Header)
		}
	}
	// return_full_text false, raw text body, and sampled sequences.
	r := st.Post(t, g.URL+"/", `{"inputs":"Hello","parameters":{"return_full_text":false,"max_new_tokens":3}}`)
	var got []map[string]string
	if json.Unmarshal(r.Body, &got) != nil || len(got) != 1 || strings.HasPrefix(got[0]["generated_text"], "Hello") {
		t.Errorf("return_full_text=false: %s", r.Body)
	}
	r = st.Post(t, g.URL+"/", `{"inputs":"Hello","parameters":{"do_sample":true,"seed":3,"num_return_sequences":3,"max_new_tokens":5,"top_k":20}}`)
	if json.Unmarshal(r.Body, &got) != nil || len(got) != 3 {
		t.Errorf("num_return_sequences: %d %s", r.Status, r.Body)
	}
	if r := st.Post(t, g.URL+"/", `Hello`); r.Status != 200 {
		t.Errorf("raw text: %d %s", r.Status, r.Body)
	}
}

func TestAICTextGenerationValidation(t *testing.T) {
	g := startGPT(t, 0, 0)
	cases := []struct{ body, want string }{
		{`{"inputs":"a","parameters":{"max_length":1000}}`, `{"error":["Input should be less than or equal to 500: received ` + "`max_length`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"min_length":20,"max_length":10}}`, `{"error":["Value error, min_length cannot be larger than max_length: received ` + "`max_length`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"top_p":2.1}}`, `{"error":["Input should be less than or equal to 1: received ` + "`top_p`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"temperature":"hot"}}`, `{"error":["Input should be a valid number: received ` + "`temperature`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"top_k":5.0}}`, `{"error":["Input should be a valid integer: received ` + "`top_k`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"num_return_sequences":0}}`, `{"error":["Input should be greater than or equal to 1: received ` + "`num_return_sequences`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"return_full_text":"invalid"}}`, `{"error":["Input should be a valid boolean, unable to interpret input: received ` + "`return_full_text`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":["x"]}`, `{"error":["Input should be a valid string: received ` + "`['x']`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":null}`, `{"error":["Input should be a valid dictionary or instance of TextGenerationParamsCheck: received ` + "`None`" + ` in ` + "`parameters`" + `"]}`},
		{`{"inputs":"a","parameters":{"foo":1,"max_new_tokens":2}}`, "{\"error\":\"The following `model_kwargs` are not used by the model: ['foo'] (note: typos in the generate arguments will also show up in this list)\"}"},
		{`{"inputs":"a","parameters":{"do_sample":true,"temperature":0}}`, "{\"error\":\"`temperature` (=0.0) has to be a strictly positive float, otherwise your next token scores will be invalid. If you're looking for greedy decoding strategies, set `do_sample=False`.\"}"},
	}
	for _, c := range cases {
		r := st.Post(t, g.URL+"/", c.body)
		if r.Status != 400 || string(r.Body) != c.want {
			t.Errorf("%s:\n got %d %s\nwant 400 %s", c.body, r.Status, r.Body, c.want)
		}
	}
}

type tgiToken struct {
	ID      int32    `json:"id"`
	Text    string   `json:"text"`
	LogProb *float64 `json:"logprob"`
	Special bool     `json:"special"`
}

type tgiDetails struct {
	FinishReason    string     `json:"finish_reason"`
	GeneratedTokens int        `json:"generated_tokens"`
	Seed            *uint64    `json:"seed"`
	InputLength     int        `json:"input_length"`
	Tokens          []tgiToken `json:"tokens"`
}

func TestTGIGenerate(t *testing.T) {
	g := startGPT(t, 0, 0)
	c := gptGolden(t)[0]
	r := st.Post(t, g.URL+"/generate", `{"inputs":"`+c.Prompt+`","parameters":{"details":true,"max_new_tokens":20}}`)
	var out struct {
		GeneratedText string     `json:"generated_text"`
		Details       tgiDetails `json:"details"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	ids := make([]int32, len(out.Details.Tokens))
	for i, tk := range out.Details.Tokens {
		ids[i] = tk.ID
		if tk.LogProb == nil || *tk.LogProb > 0 {
			t.Errorf("token %d logprob %v", i, tk.LogProb)
		}
	}
	if out.GeneratedText != c.NewText || fmt.Sprint(ids) != fmt.Sprint(c.NewIDs) || out.Details.FinishReason != "length" || out.Details.GeneratedTokens != 20 || out.Details.Seed != nil {
		t.Errorf("got %s", r.Body)
	}
	for k, v := range map[string]string{"x-generated-tokens": "20", "x-prompt-tokens": fmt.Sprint(len(c.PromptIDs)), "x-compute-type": "cpu"} {
		if r.Header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.Header.Get(k), v)
		}
	}
	for _, k := range []string{"x-compute-time", "x-queue-time", "x-inference-time", "x-time-per-token", "x-total-time", "x-validation-time"} {
		if r.Header.Get(k) == "" {
			t.Errorf("no %s", k)
		}
	}
	// Without details, and with return_full_text.
	r = st.Post(t, g.URL+"/generate", `{"inputs":"`+c.Prompt+`","parameters":{"return_full_text":true}}`)
	if string(r.Body) != `{"generated_text":`+jsonStrNoEscape(c.GeneratedText)+`}` {
		t.Errorf("full text: %s", r.Body)
	}
	errs := []struct{ body, want string }{
		{`{"inputs":"a","parameters":{"temperature":0}}`, `{"error":"Input validation error: ` + "`temperature`" + ` must be strictly positive","error_type":"validation"}`},
		{`{"inputs":"a","parameters":{"top_p":1.0}}`, `{"error":"Input validation error: ` + "`top_p`" + ` must be > 0.0 and < 1.0","error_type":"validation"}`},
		{`{"inputs":"a","parameters":{"max_new_tokens":0}}`, `{"error":"Input validation error: ` + "`max_new_tokens`" + ` must be strictly positive","error_type":"validation"}`},
		{`{"inputs":"","parameters":{}}`, `{"error":"Input validation error: ` + "`inputs`" + ` cannot be empty","error_type":"validation"}`},
		{`{"inputs":"a","parameters":{"stop":["1","2","3","4","5"]}}`, `{"error":"Input validation error: ` + "`stop`" + ` supports up to 4 stop sequences. Given: 5","error_type":"validation"}`},
		{`{"inputs":"Hello","parameters":{"max_new_tokens":254}}`, `{"error":"Input validation error: ` + "`inputs`" + ` tokens + ` + "`max_new_tokens`" + ` must be <= 256. Given: 3 ` + "`inputs`" + ` tokens and 254 ` + "`max_new_tokens`" + `","error_type":"validation"}`},
	}
	for _, e := range errs {
		r := st.Post(t, g.URL+"/generate", e.body)
		if r.Status != 422 || string(r.Body) != e.want {
			t.Errorf("%s:\n got %d %s\nwant 422 %s", e.body, r.Status, r.Body, e.want)
		}
	}
}

func jsonStrNoEscape(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// readSSE returns the data payloads of a server-sent-events body.
func readSSE(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data:") {
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		} else if line != "" {
			t.Errorf("unexpected SSE line %q", line)
		}
	}
	return out
}

func postStream(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := st.Client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestTGIGenerateStream(t *testing.T) {
	g := startGPT(t, 0, 0)
	for _, c := range gptGolden(t) {
		resp := postStream(t, g.URL+"/generate_stream", `{"inputs":`+jsonStrNoEscape(c.Prompt)+`,"parameters":{"max_new_tokens":20}}`)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := readSSE(t, resp.Body)
		resp.Body.Close()
		if len(events) != 20 {
			t.Fatalf("%q: %d events", c.Prompt, len(events))
		}
		var ids []int32
		for i, data := range events {
			var ev struct {
				Index         int         `json:"index"`
				Token         tgiToken    `json:"token"`
				GeneratedText *string     `json:"generated_text"`
				Details       *tgiDetails `json:"details"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			ids = append(ids, ev.Token.ID)
			last := i == len(events)-1
			if ev.Index != i+1 || (ev.GeneratedText != nil) != last || (ev.Details != nil) != last {
				t.Errorf("event %d: %s", i, data)
			}
			if last && (*ev.GeneratedText != c.NewText || ev.Details.FinishReason != "length" || ev.Details.GeneratedTokens != 20 || ev.Details.InputLength != len(c.PromptIDs)) {
				t.Errorf("final event %s", data)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.NewIDs) {
			t.Errorf("%q: streamed %v, want %v", c.Prompt, ids, c.NewIDs)
		}
	}
	// Errors before the first token keep their status.
	resp := postStream(t, g.URL+"/generate_stream", `{"inputs":"","parameters":{}}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || !strings.Contains(string(b), "cannot be empty") {
		t.Errorf("empty input: %d %s", resp.StatusCode, b)
	}
}

func TestCompletions(t *testing.T) {
	g := startGPT(t, 0, 0)
	c := gptGolden(t)[1] // "Hello"
	r := st.Post(t, g.URL+"/v1/completions", `{"prompt":"Hello","max_tokens":20,"temperature":0,"model":"m"}`)
	var out struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Text         string `json:"text"`
			Index        int    `json:"index"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct{ PromptTokens, CompletionTokens, TotalTokens int } `json:"usage"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if out.Object != "text_completion" || out.Model != "m" || len(out.Choices) != 1 || out.Choices[0].Text != c.NewText || out.Choices[0].FinishReason != "length" {
		t.Errorf("got %s", r.Body)
	}
	// Stop sequences are cut, finish_reason "stop"; two prompts, n = 2.
	r = st.Post(t, g.URL+"/v1/completions", `{"prompt":["Hello","Hello"],"max_tokens":20,"temperature":0,"stop":"WebDA","n":2}`)
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || len(out.Choices) != 4 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	cut := c.NewText[:strings.Index(c.NewText, "WebDA")]
	for i, ch := range out.Choices {
		if ch.Text != cut || ch.FinishReason != "stop" || ch.Index != i {
			t.Errorf("choice %d: %+v, want %q", i, ch, cut)
		}
	}
	// Streaming: deltas add up to the text, then [DONE].
	resp := postStream(t, g.URL+"/v1/completions", `{"prompt":"Hello","max_tokens":20,"temperature":0,"stop":["WebDA"],"stream":true}`)
	events := readSSE(t, resp.Body)
	resp.Body.Close()
	if len(events) < 2 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	var text strings.Builder
	finish := ""
	for _, data := range events[:len(events)-1] {
		var ch struct {
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		text.WriteString(ch.Choices[0].Text)
		if ch.Choices[0].FinishReason != nil {
			finish = *ch.Choices[0].FinishReason
		}
	}
	if text.String() != cut || finish != "stop" {
		t.Errorf("streamed %q (%s), want %q", text.String(), finish, cut)
	}
	if r := st.Post(t, g.URL+"/v1/completions", `{"prompt":"a","temperature":3}`); r.Status != 422 {
		t.Errorf("temperature 3: %d %s", r.Status, r.Body)
	}
}

// A client that disconnects mid-stream stops its sequence: it leaves the batch at the next
// step, long before max_new_tokens.
func TestGenerateStreamDisconnect(t *testing.T) {
	g := startGPT(t, 5*time.Millisecond, 0)
	resp := postStream(t, g.URL+"/generate_stream", `{"inputs":"Hello","parameters":{"max_new_tokens":250}}`)
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data:") {
		t.Fatalf("first event: %q %v", line, err)
	}
	resp.Body.Close() // hang up
	// A failed write stops the sequence (Stream.Stop) and ends the request's context:
	// whichever the loop sees first names the reason.
	left := func() float64 {
		return counterValue(g.reg, "infergo_gen_sequences_finished_total", "stopped") +
			counterValue(g.reg, "infergo_gen_sequences_finished_total", "cancelled")
	}
	deadline := time.Now().Add(10 * time.Second)
	for left() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the sequence did not stop: %s", metricsText(t, g.URL))
		}
		time.Sleep(5 * time.Millisecond)
	}
	body := metricsText(t, g.URL)
	var tokens float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "infergo_gen_generated_tokens_total ") {
			fmt.Sscan(strings.TrimPrefix(line, "infergo_gen_generated_tokens_total "), &tokens)
		}
	}
	// The warm-up generated 2; the stream a few before the hang-up was noticed (the reason
	// above already shows it did not run to its 250 tokens).
	if tokens >= 200 {
		t.Errorf("%v tokens generated after the client left at the first one", tokens)
	}

	// A non-streaming request whose client hangs up is cancelled at the next step.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.URL+"/generate", strings.NewReader(`{"inputs":"Hello","parameters":{"max_new_tokens":250}}`))
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := st.Client.Do(req); err == nil {
		t.Error("request finished before the client hung up")
	}
	for left() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the request was not cancelled: %s", metricsText(t, g.URL))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counterValue reads the series of a counter vector whose reason label is reason (0 when
// absent).
func counterValue(reg *prometheus.Registry, name, reason string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func metricsText(t *testing.T, url string) string {
	return string(st.Get(t, url+"/metrics").Body)
}

// Overload answers 429 at once on every generation route.
func TestGenerationOverload(t *testing.T) {
	g := startGPT(t, 5*time.Millisecond, 1)
	resp := postStream(t, g.URL+"/generate_stream", `{"inputs":"Hello","parameters":{"max_new_tokens":200}}`)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]string{
		"/generate":        `{"inputs":"a"}`,
		"/generate_stream": `{"inputs":"a"}`,
		"/v1/completions":  `{"prompt":"a"}`,
		"/":                `{"inputs":"a"}`,
	} {
		r := st.Post(t, g.URL+path, body)
		if r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := st.Post(t, g.URL+"/generate", `{"inputs":"a"}`); !strings.Contains(string(r.Body), `"error_type":"overloaded"`) {
		t.Errorf("TGI overload body %s", r.Body)
	}
}

// A stream cut by a hard shutdown ends with an SSE error event, not a silent close.
func TestGenerateStreamShutdown(t *testing.T) {
	g := startGPT(t, 5*time.Millisecond, 0)
	resp := postStream(t, g.URL+"/generate_stream", `{"inputs":"Hello","parameters":{"max_new_tokens":250}}`)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go g.Shutdown(ctx)
	var last string
	for {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, "data:") {
			last = line
		}
		if err != nil {
			break
		}
	}
	if !strings.Contains(last, `"error_type":"unhealthy"`) {
		t.Errorf("last event %q, want a shutdown error event", last)
	}
}
