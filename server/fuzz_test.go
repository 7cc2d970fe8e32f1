package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/infergo/infergo/pipelines"
)

// FuzzNormalizeRequest feeds arbitrary bodies to the api-inference-community normaliser of
// both text tasks: it must never panic, every rejection must be a 400 with a JSON body in
// upstream's shape, and every acceptance must hold inputs of the task's schema.
func FuzzNormalizeRequest(f *testing.F) {
	var cases []struct {
		BodyHex string `json:"body_hex"`
	}
	if b, err := os.ReadFile("testdata/aic_normalize.json"); err == nil && json.Unmarshal(b, &cases) == nil {
		for _, c := range cases {
			if body, err := hex.DecodeString(c.BodyHex); err == nil {
				f.Add(body, false)
				f.Add(body, true)
			}
		}
	}
	f.Add([]byte(`{"inputs":{"source_sentence":"a","sentences":["b"]},"parameters":{"truncate":true}}`), true)
	f.Add([]byte(`{"inputs":"x","parameters":{"dimensions":3,"normalize":false},"truncation_direction":"left"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, similarity bool) {
		task, keys := pipelines.TaskFeatureExtraction, featureExtractionKeys
		if similarity {
			task, keys = pipelines.TaskSentenceSimilarity, sentenceSimilarityKeys
		}
		req, herr := normalizeNLP(body, task)
		if herr != nil {
			out := herr.appendBody(nil, protoAIC)
			if herr.status(protoAIC) != 400 || !json.Valid(out) {
				t.Fatalf("rejection %d %s", herr.status(protoAIC), out)
			}
			if !utf8.Valid(body) != strings.HasPrefix(herr.msg, "'utf-8' codec can't decode") {
				t.Fatalf("UTF-8 verdict disagrees: %q", herr.msg)
			}
			for _, m := range herr.list {
				if !strings.HasSuffix(m, "in `parameters`") {
					t.Fatalf("schema message %q", m)
				}
			}
			return
		}
		if similarity {
			src, sents := req.similarity()
			if req.chars < utf8.RuneCountInString(src)+countChars(anySlice(sents)) {
				t.Fatalf("chars %d too small", req.chars)
			}
		} else {
			texts, single := req.texts()
			if len(texts) == 0 || (single && len(texts) != 1) {
				t.Fatalf("texts %q single=%v", texts, single)
			}
		}
		if _, herr := aicEmbedOptions(req, keys, false); herr != nil && herr.status(protoAIC) != 400 {
			t.Fatalf("options error %d", herr.status(protoAIC))
		}
	})
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// FuzzTEIRequest feeds arbitrary bodies to the TEI/OpenAI decoders. The strict parser must
// agree with encoding/json on what is JSON, and every decoder must answer 400/422 or accept.
func FuzzTEIRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":"a"}`, `{"inputs":["a","b"],"truncate":false,"truncation_direction":"left","normalize":false,"dimensions":4}`,
		`{"inputs":[1,2]}`, `{"inputs":[[1],[2]]}`, `{"inputs":[]}`, `{"input":"a","encoding_format":"base64","model":"m"}`,
		`{"inputs":{"source_sentence":"a","sentences":["b"]},"parameters":{"truncate":true,"prompt_name":null}}`,
		`{"ids":[1,2,3],"skip_special_tokens":false}`, `{"ids":[[1],[4294967296]]}`, `{"ids":[]}`, `{"inputs":"\ud83d\ude00"}`,
		`{"a":1e999,"b":-0,"c":[{},[]],"d":"\u0000"}`, `[`, `{"inputs":NaN}`, "{\"inputs\":\"\xff\"}", `{"inputs":"a","inputs":["b"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseJSON(body, false)
		if utf8.Valid(body) && bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")) < maxJSONDepth {
			if ok := err == nil; ok != json.Valid(body) {
				t.Fatalf("parseJSON ok=%v, encoding/json valid=%v (%v)", ok, !ok, err)
			}
		}
		if out := appendPyJSON(nil, v); err == nil && !bytes.Contains(out, []byte("Infinity")) {
			// What we parse must serialise back to JSON that parses to the same text (out of
			// range floats become ±Inf, which JSON cannot write back).
			v2, err := parseJSON(out, false)
			if err != nil || !bytes.Equal(appendPyJSON(nil, v2), out) {
				t.Fatalf("round trip of %s: %v", out, err)
			}
		}
		o, herr := parseTEIBody(body)
		check := func(herr *httpError) {
			if herr == nil {
				return
			}
			if s := herr.status(protoTEI); s != 400 && s != 422 {
				t.Fatalf("status %d for %s", s, herr.msg)
			}
			if !json.Valid(herr.appendBody(nil, protoTEI)) || !json.Valid(herr.appendBody(nil, protoOpenAI)) {
				t.Fatalf("invalid error body for %q", herr.msg)
			}
		}
		check(herr)
		if herr != nil {
			return
		}
		for _, key := range []string{"inputs", "input"} {
			texts, single, herr := teiTexts(o, key)
			check(herr)
			if herr == nil && (len(texts) == 0 || (single && len(texts) != 1)) {
				t.Fatalf("texts %q single=%v", texts, single)
			}
		}
		_, herr = teiEmbedOptions(o, true)
		check(herr)
		_, _, _, herr = similarityRequest(o)
		check(herr)
		_, _, herr = tokenizeTexts(o)
		check(herr)
		ids, single, herr := decodeIDs(o)
		check(herr)
		if herr == nil && single && len(ids) != 1 {
			t.Fatalf("single ids %v", ids)
		}
		_, herr = optDimensions(o)
		check(herr)
	})
}
