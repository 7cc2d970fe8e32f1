package server

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines"
)

// TestNormalizeNLPGolden replays testdata/aic_normalize.json: what CPython 3.11 + pydantic
// 2.13 running api-inference-community's validation.py (and routes.py's error formatting)
// answer for each body. Errors must match byte for byte; accepted bodies must yield the same
// inputs, parameters and x-compute-characters.
func TestNormalizeNLPGolden(t *testing.T) {
	var cases []struct {
		Task       string `json:"task"`
		BodyHex    string `json:"body_hex"`
		Status     int    `json:"status"`
		Body       string `json:"body"`
		Inputs     string `json:"inputs"`
		Parameters string `json:"parameters"`
		Chars      int    `json:"chars"`
	}
	loadGolden(t, "aic_normalize.json", &cases)
	if len(cases) < 90 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		body, err := hex.DecodeString(c.BodyHex)
		if err != nil {
			t.Fatal(err)
		}
		name := c.Task + " " + string(body)
		if len(name) > 80 {
			name = name[:80]
		}
		req, herr := normalizeNLP(body, c.Task)
		if c.Status == 400 {
			if herr == nil {
				t.Errorf("%s: accepted, Python answered %s", name, c.Body)
				continue
			}
			if got := string(herr.appendBody(nil, protoAIC)); got != c.Body {
				t.Errorf("%s:\n got  %s\n want %s", name, got, c.Body)
			}
			if herr.status(protoAIC) != 400 {
				t.Errorf("%s: status %d", name, herr.status(protoAIC))
			}
			continue
		}
		if herr != nil {
			t.Errorf("%s: rejected with %s, Python accepted", name, herr.appendBody(nil, protoAIC))
			continue
		}
		if got := string(appendPyJSON(nil, req.inputs)); got != c.Inputs {
			t.Errorf("%s: inputs %s, Python %s", name, got, c.Inputs)
		}
		if got := string(appendPyJSON(nil, req.params)); got != c.Parameters {
			t.Errorf("%s: parameters %s, Python %s", name, got, c.Parameters)
		}
		if req.chars != c.Chars {
			t.Errorf("%s: chars %d, Python %d", name, req.chars, c.Chars)
		}
	}
}

func TestValidationMessagesEndInParameters(t *testing.T) {
	// hf-inference-api.md §1.6: every schema message ends with "in `parameters`".
	for _, body := range []string{`{"inputs":[]}`, `{"inputs":12}`, `["a",[1]]`, `{"inputs":{"x":1}}`} {
		_, herr := normalizeNLP([]byte(body), pipelines.TaskFeatureExtraction)
		if herr == nil || len(herr.list) == 0 {
			t.Fatalf("%s: want a list error, got %v", body, herr)
		}
		for _, m := range herr.list {
			if !strings.HasSuffix(m, "in `parameters`") {
				t.Errorf("%s: %q", body, m)
			}
		}
	}
}

func TestAICEmbedOptions(t *testing.T) {
	norm := func(body string, lora bool) (pipelines.EmbedOptions, string) {
		req, herr := normalizeNLP([]byte(body), pipelines.TaskFeatureExtraction)
		if herr != nil {
			t.Fatalf("%s: %v", body, herr)
		}
		o, herr := aicEmbedOptions(req, featureExtractionKeys, lora)
		if herr != nil {
			return o, herr.msg
		}
		return o, ""
	}
	if o, msg := norm(`"x"`, false); msg != "" || !o.Truncate || o.Normalize != nil {
		t.Errorf("defaults: %+v %q", o, msg)
	}
	o, msg := norm(`{"inputs":"x","parameters":{"normalize":false,"truncate":false,"truncation_direction":"left","dimensions":8}}`, false)
	if msg != "" || o.Normalize == nil || *o.Normalize || o.Truncate || o.TruncationDirection != pipelines.TruncateLeft || o.Dimensions != 8 {
		t.Errorf("parameters: %+v %q", o, msg)
	}
	// Top-level knobs (huggingface_hub sends them there) count when valid, else are ignored.
	if o, msg := norm(`{"inputs":"x","normalize":false,"truncate":"no"}`, false); msg != "" || o.Normalize == nil || *o.Normalize || !o.Truncate {
		t.Errorf("top level: %+v %q", o, msg)
	}
	// parameters win over the top level.
	if o, _ := norm(`{"inputs":"x","normalize":false,"parameters":{"normalize":true}}`, false); o.Normalize == nil || !*o.Normalize {
		t.Errorf("precedence: %+v", o)
	}
	for body, want := range map[string]string{
		`{"inputs":"x","parameters":{"foo":1,"normalize":true}}`: "__call__() got an unexpected keyword argument 'foo'",
		`{"inputs":"x","parameters":{"it's":1}}`:                 `__call__() got an unexpected keyword argument "it's"`,
		`{"inputs":"x","parameters":null}`:                       "__call__() argument after ** must be a mapping, not NoneType",
		`{"inputs":"x","parameters":[1]}`:                        "__call__() argument after ** must be a mapping, not list",
		`{"inputs":"x","parameters":{"normalize":"yes"}}`:        "`normalize` must be a boolean",
		`{"inputs":"x","parameters":{"truncation_direction":1}}`: "`truncation_direction` must be \"left\" or \"right\"",
		`{"inputs":"x","parameters":{"dimensions":0}}`:           "`dimensions` must be a positive integer",
		`{"inputs":"x","parameters":{"dimensions":2.0}}`:         "`dimensions` must be a positive integer",
	} {
		if _, msg := norm(body, false); msg != want {
			t.Errorf("%s: %q, want %q", body, msg, want)
		}
	}
	if _, msg := norm(`"x"`, true); msg != "__call__() got an unexpected keyword argument 'lora_adapter'" {
		t.Errorf("lora: %q", msg)
	}
}
