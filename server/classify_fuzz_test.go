package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines"
)

// FuzzClassifyParams feeds arbitrary bodies through the api-inference-community path of both
// classification tasks (normalisation, then the parameters): no panic, every rejection a 400
// with a JSON body, every acceptance a string input and options the pipelines accept.
func FuzzClassifyParams(f *testing.F) {
	for _, s := range []string{
		`{"inputs":"Hugging Face","parameters":{"aggregation_strategy":"MAX","ignore_labels":["O","MISC"],"stride":16}}`,
		`{"inputs":"x","parameters":{"aggregation_strategy":null,"ignore_labels":[],"stride":0}}`,
		`{"inputs":"x","parameters":{"top_k":2,"function_to_apply":"Sigmoid","truncation":false}}`,
		`{"inputs":"x","parameters":{"top_k":0}}`, `{"inputs":"x","parameters":[1]}`, `{"inputs":["x"]}`,
		`"raw"`, `raw text`, `null`, `{"inputs":"x","parameters":{"stride":1e3}}`, "\xc3\x28",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, text, lora bool) {
		task := pipelines.TaskTokenClassification
		if text {
			task = pipelines.TaskTextClassification
		}
		req, herr := normalizeNLP(body, task)
		if herr == nil {
			if _, ok := req.inputs.(string); !ok {
				t.Fatalf("accepted inputs %T", req.inputs)
			}
			if text {
				var o pipelines.TextClassifyOptions
				if o, herr = textClassifyOptions(req, lora); herr == nil && (o.TopK < 0 || !validFunction(o.Function)) {
					t.Fatalf("options %+v", o)
				}
			} else {
				var o pipelines.TokenClassifyOptions
				if o, herr = tokenClassifyOptions(req, lora); herr == nil && o.Stride != nil && *o.Stride < 0 {
					t.Fatalf("options %+v", o)
				}
			}
			if herr == nil {
				return
			}
		}
		if out := herr.appendBody(nil, protoAIC); herr.status(protoAIC) != 400 || !json.Valid(out) {
			t.Fatalf("rejection %d %s", herr.status(protoAIC), out)
		}
	})
}

func validFunction(f pipelines.ClassificationFunction) bool {
	switch f {
	case pipelines.FunctionDefault, pipelines.FunctionSoftmax, pipelines.FunctionSigmoid, pipelines.FunctionNone:
		return true
	}
	return false
}

// FuzzPredictRequest feeds arbitrary bodies to TEI /predict's decoding: no panic, rejections
// are 400/422 with TEI's JSON body, acceptances hold at least one input and pairs only where
// the body had two strings.
func FuzzPredictRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":"a"}`, `{"inputs":["a","b"]}`, `{"inputs":[["a"],["b","c"]]}`, `{"inputs":[]}`,
		`{"inputs":["a","b","c"]}`, `{"inputs":[["a","b","c"]]}`, `{"inputs":[["a"],"b"]}`, `{"inputs":[[1]]}`,
		`{"inputs":"a","raw_scores":true,"truncate":false,"truncation_direction":"Left"}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, herr := parseTEIBody(body)
		if herr == nil {
			var inputs []pipelines.TextInput
			if inputs, _, herr = predictInputs(o); herr == nil {
				if len(inputs) == 0 {
					t.Fatal("no inputs accepted")
				}
				for _, in := range inputs {
					if !in.HasPair && in.Pair != "" {
						t.Fatalf("input %+v", in)
					}
				}
				if _, _, herr = predictOptions(o); herr == nil {
					return
				}
			}
		}
		st := herr.status(protoTEI)
		out := herr.appendBody(nil, protoTEI)
		if (st != 400 && st != 422) || !json.Valid(out) || !strings.Contains(string(out), `"error_type":`) {
			t.Fatalf("rejection %d %s", st, out)
		}
	})
}
