package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines"
)

// FuzzTextGenerationParams feeds arbitrary bodies to the api-inference-community
// text-generation validation and keyword mapping: never a panic; rejections are 400s in
// upstream's shape; accepted requests have a string prompt and sane parameters.
func FuzzTextGenerationParams(f *testing.F) {
	for _, s := range []string{
		`{"inputs":"Hello","parameters":{"max_new_tokens":5,"do_sample":true,"seed":1,"top_k":3,"top_p":0.5,"temperature":0.7}}`,
		`{"inputs":"a","parameters":{"min_length":20,"max_length":10}}`,
		`{"inputs":"a","parameters":{"return_full_text":"yes","num_return_sequences":2,"stop":["x"],"max_time":1.5}}`,
		`{"inputs":["x"]}`, `"just text"`, `raw text`, `{"inputs":"a","parameters":null}`,
		`{"inputs":"a","parameters":{"top_k":5.0,"temperature":"hot","foo":1}}`,
	} {
		f.Add([]byte(s))
	}
	defaults := pipelines.GenerateParams{MaxNewTokens: 20, Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1, NumReturnSequences: 1}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, herr := normalizeNLP(body, pipelines.TaskTextGeneration)
		if herr != nil {
			out := herr.appendBody(nil, protoAIC)
			if herr.status(protoAIC) != 400 || !json.Valid(out) {
				t.Fatalf("bad rejection %d %s", herr.status(protoAIC), out)
			}
			for _, m := range herr.list {
				if !strings.HasSuffix(m, "in `parameters`") {
					t.Fatalf("message %q", m)
				}
			}
			return
		}
		if _, ok := req.inputs.(string); !ok {
			t.Fatalf("accepted inputs %T", req.inputs)
		}
		p, _, herr := aicGenerateParams(req, defaults, false)
		if herr != nil {
			if herr.status(protoAIC) != 400 {
				t.Fatalf("keyword error %d", herr.status(protoAIC))
			}
			return
		}
		if p.NumReturnSequences < 1 || p.NumReturnSequences > 10 || p.TopP < 0 || p.TopP > 1 || p.TopK < 0 || p.MaxTime < 0 {
			t.Fatalf("accepted %+v", p)
		}
	})
}

// FuzzGenerateBodies feeds arbitrary bodies to the TGI and OpenAI parsers: never a panic,
// rejections are 4xx JSON, accepted requests satisfy the documented ranges.
func FuzzGenerateBodies(f *testing.F) {
	for _, s := range []string{
		`{"inputs":"a","parameters":{"details":true,"max_new_tokens":3,"temperature":0.5,"top_k":4,"top_p":0.9,"seed":7,"stop":["x"],"return_full_text":true}}`,
		`{"inputs":"a","parameters":{"best_of":2,"typical_p":0.5,"top_n_tokens":1,"truncate":3}}`,
		`{"prompt":["a","b"],"max_tokens":4,"n":2,"temperature":0,"stop":"x","stream":false,"echo":true,"seed":1}`,
		`{"prompt":"a","stream":true,"top_p":1,"frequency_penalty":0}`, `[]`, `{"inputs":null}`, `nope`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, openai bool) {
		var req *genRequest
		var herr *httpError
		if openai {
			req, herr = parseCompletion(body)
		} else {
			req, herr = parseTGI(body, pipelines.GenerateParams{}, len(body)%2 == 0)
		}
		if herr != nil {
			if st := herr.status(protoTGI); st < 400 || st >= 500 || !json.Valid(herr.appendBody(nil, protoTGI)) {
				t.Fatalf("bad rejection %d", st)
			}
			return
		}
		p := req.params
		if len(req.prompts) == 0 || p.Temperature <= 0 || p.TopP <= 0 || p.TopP > 1 || p.TopK < 0 || p.RepetitionPenalty <= 0 || p.NumReturnSequences < 1 {
			t.Fatalf("accepted %+v", p)
		}
		if openai && p.MaxNewTokens < 1 {
			t.Fatalf("max_tokens %d", p.MaxNewTokens)
		}
	})
}
