package servertest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// Acceptance runs the api-inference-community acceptance checks of hf-inference-api.md §3.6
// that apply to an embedding server (A-01… …A-12, T-FE-1…4 or T-SS-1)
// against the server at url, whose TASK is task ("feature-extraction" or
// "sentence-similarity") and whose model pools to vectors of size hidden (0: not checked).
// It only uses HTTP, so it runs unchanged against fakes and real models.
func Acceptance(t *testing.T, url, task string, hidden int) {
	t.Run("A-01 GET any path", func(t *testing.T) {
		for _, p := range []string{"/", "/anything/else"} {
			r := Get(t, url+p)
			if r.Status != 200 || string(r.Body) != `{"ok":"ok"}` || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("GET %s: %d %q %q", p, r.Status, r.Header.Get("Content-Type"), r.Body)
			}
		}
	})
	t.Run("A-02 path ignored", func(t *testing.T) {
		body := validBody(task)
		a, b := Post(t, url+"/", body), Post(t, url+"/pipeline/"+task+"/some/model", body)
		if a.Status != 200 || b.Status != 200 || !bytes.Equal(a.Body, b.Body) {
			t.Errorf("POST / → %d, /pipeline/… → %d; bodies equal: %v", a.Status, b.Status, bytes.Equal(a.Body, b.Body))
		}
	})
	t.Run("A-03 other methods", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodDelete} {
			if r := Do(t, m, url+"/", []byte("x")); r.Status != 405 {
				t.Errorf("%s: %d", m, r.Status)
			}
		}
	})
	t.Run("A-04/A-05 headers", func(t *testing.T) {
		r := Post(t, url, validBody(task))
		checkComputeHeaders(t, r)
		want := map[string]string{"feature-extraction": "4", "sentence-similarity": "13"}[task]
		if got := r.Header.Get("x-compute-characters"); got != want {
			t.Errorf("x-compute-characters %q, want %q", got, want)
		}
		bad := Post(t, url, badBody(task))
		if bad.Status != 400 {
			t.Fatalf("bad body: %d %s", bad.Status, bad.Body)
		}
	})
	t.Run("A-07 UTF-8", func(t *testing.T) {
		r := Post(t, url, "\xc3\x28")
		want := `{"error":"'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"}`
		if r.Status != 400 || string(r.Body) != want {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("A-08 schema errors", func(t *testing.T) {
		r := Post(t, url, badBody(task))
		var body struct {
			Error []string `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &body); r.Status != 400 || err != nil || len(body.Error) == 0 {
			t.Fatalf("%d %s (%v)", r.Status, r.Body, err)
		}
		for _, m := range body.Error {
			if !strings.HasSuffix(m, "in `parameters`") {
				t.Errorf("message %q", m)
			}
		}
	})
	t.Run("A-10 garbage matrix", func(t *testing.T) {
		for _, body := range garbage {
			r := Post(t, url, body)
			if r.Status != 200 && r.Status != 400 {
				t.Errorf("%.40q → %d %s", body, r.Status, r.Body)
			}
			if r.Status == 400 && r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%.40q → 400 with %q", body, r.Header.Get("Content-Type"))
			}
		}
	})
	t.Run("A-11 JSON encoding", func(t *testing.T) {
		r := Post(t, url, `{"inputs":"x","parameters":{"été <&>":1}}`)
		if task == "sentence-similarity" {
			r = Post(t, url, `été <&>`)
		}
		if r.Status != 400 || !bytes.Contains(r.Body, []byte("été <&>")) || !bytes.HasPrefix(r.Body, []byte(`{"error":`)) || r.Body[9] == ' ' {
			t.Errorf("non-ASCII or HTML escaped, or not compact: %s", r.Body)
		}
	})
	t.Run("A-12 gzip", func(t *testing.T) {
		body, status := `{"inputs":[`+strings.TrimSuffix(strings.Repeat(`"a b c",`, 16), ",")+`]}`, 200
		if task == "sentence-similarity" {
			// Similarity outputs stay small under the client batch limit; an error that echoes
			// a long input is large (Starlette compresses any status).
			body, status = strings.Repeat("long raw text ", 100), 400
		}
		r := Post(t, url, body, "Accept-Encoding", "gzip")
		if r.Status != status || r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%d, Content-Encoding %q", r.Status, r.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
		if small := Get(t, url+"/", "Accept-Encoding", "gzip"); small.Header.Get("Content-Encoding") != "" {
			t.Error("a body under 1000 bytes was compressed")
		}
	})
	if task == "sentence-similarity" {
		t.Run("T-SS-1", func(t *testing.T) {
			for _, body := range []string{
				`{"inputs":{"source_sentence":"That is a happy person","sentences":["That is a happy person","That is a very happy dog","Today is a sunny day"]}}`,
				`{"source_sentence":"That is a happy person","sentences":["That is a happy person","That is a very happy dog","Today is a sunny day"]}`,
			} {
				v := floats(t, Post(t, url, body), 3)
				if len(v) == 3 && math.Abs(v[0]-1) > 1e-3 {
					t.Errorf("identical sentence scores %v", v[0])
				}
			}
			if r := Post(t, url, `{"inputs":{"source_sentence":"a"}}`); r.Status != 400 {
				t.Errorf("missing sentences: %d", r.Status)
			}
		})
		return
	}
	t.Run("T-FE-1 string", func(t *testing.T) {
		for _, body := range []string{`{"inputs":"Some"}`, `"Some"`, `Some`} {
			floats(t, Post(t, url, body), hidden)
		}
	})
	t.Run("T-FE-2 list", func(t *testing.T) {
		r := Post(t, url, `{"inputs":["hugging","face"]}`)
		var rows [][]float64
		if err := json.Unmarshal(r.Body, &rows); r.Status != 200 || err != nil || len(rows) != 2 {
			t.Fatalf("%d %.200s (%v)", r.Status, r.Body, err)
		}
		for _, row := range rows {
			if hidden > 0 && len(row) != hidden {
				t.Errorf("row of %d, want %d", len(row), hidden)
			}
		}
	})
	t.Run("T-FE-3/4 invalid lists", func(t *testing.T) {
		for _, body := range []string{`{"inputs":[]}`, `{"inputs":["a",[1]]}`} {
			if r := Post(t, url, body); r.Status != 400 || !bytes.HasPrefix(r.Body, []byte(`{"error":["`)) {
				t.Errorf("%s → %d %s", body, r.Status, r.Body)
			}
		}
	})
}

func validBody(task string) string {
	if task == "sentence-similarity" {
		return `{"inputs":{"source_sentence":"Some","sentences":["Some","thing"]}}`
	}
	return `Some`
}

func badBody(task string) string {
	if task == "sentence-similarity" {
		return `{"inputs":{"source_sentence":"a"}}`
	}
	return `{"inputs":[]}`
}

// garbage is §3.5 step 3: bodies meant for other tasks and modalities.
var garbage = []string{
	"This is a test",
	`{"inputs":"This is a test [MASK]"}`,
	`{"inputs":{"text":"Hi","past_user_inputs":["a"],"generated_responses":["b"]}}`,
	`{"inputs":{"question":"Where do I live?","context":"My name is Sarah and I live in London"}}`,
	`{"inputs":{"source_sentence":"That is a happy person","sentences":["That is a happy dog"]}}`,
	`{"inputs":"This is a test","parameters":{"candidate_labels":["a","b"]}}`,
	`{"inputs":{"data":{"1":[7.4],"2":[0.7]}}}`,
	"fLaC\x00\x00\x00\x22\x10\x00\x10\x00\x00\x06\x2d\x00\x25\xad\x03\xe8",
	"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00H\x00H\x00\x00",
	"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
	"\x1aE\xdf\xa3\x9fB\x86\x81\x01",
	`{"inputs":"iVBORw0KGgo=","parameters":{"candidate_labels":["A","B"]}}`,
}

var computeTime = regexp.MustCompile(`^\d+\.\d{3}$`)

func checkComputeHeaders(t *testing.T, r *Response) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if !computeTime.MatchString(r.Header.Get("x-compute-time")) || r.Header.Get("x-compute-type") == "" ||
		r.Header.Get("access-control-expose-headers") != "x-compute-type, x-compute-time" {
		t.Errorf("compute headers: time %q type %q expose %q", r.Header.Get("x-compute-time"),
			r.Header.Get("x-compute-type"), r.Header.Get("access-control-expose-headers"))
	}
}

// floats decodes a 200 body that must be a flat array of JSON floats (never integers, which
// Python would read as int) of length n (0: any non-empty length).
func floats(t *testing.T, r *Response, n int) []float64 {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal(r.Body, &raw); r.Status != 200 || err != nil || len(raw) == 0 {
		t.Fatalf("%d %.200s (%v)", r.Status, r.Body, err)
	}
	if n > 0 && len(raw) != n {
		t.Errorf("%d values, want %d", len(raw), n)
	}
	out := make([]float64, len(raw))
	for i, m := range raw {
		if !bytes.ContainsAny(m, ".eE") {
			t.Errorf("value %d is %s: Python would read an int", i, m)
		}
		if err := json.Unmarshal(m, &out[i]); err != nil {
			t.Errorf("value %d: %v", i, err)
		}
	}
	return out
}
