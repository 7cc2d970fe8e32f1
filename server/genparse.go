package server

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/infergo/infergo/pipelines"
)

// Parameter parsing for text generation, one dialect per route family:
//   - api-inference-community: pydantic's TextGenerationParamsCheck (validation.py, exact
//     messages, a 400 list), then the transformers pipeline's keyword arguments (unknown ones
//     are generate()'s "model_kwargs are not used" ValueError, a 400 string);
//   - TGI (/generate, /generate_stream): GenerateParameters with validation.rs messages (422);
//   - OpenAI (/v1/completions).

// pydantic constraint numbers print like Python's repr of the bound, minus a ".0".
func pyBound(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// aicIntField is a strict, optional, constrained int of the schema; hi < 0: no upper bound.
func aicInt(v any, lo, hi float64) (string, bool) {
	s, ok := v.(pyInt)
	if !ok {
		return "Input should be a valid integer", false
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return "Input should be a valid integer", false
	}
	return aicRange(f, lo, hi)
}

// aicFloat is a strict optional float: ints are accepted, strings and bools are not.
func aicFloat(v any, lo, hi float64) (string, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case pyInt:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return "Input should be a valid number", false
		}
	default:
		return "Input should be a valid number", false
	}
	return aicRange(f, lo, hi)
}

func aicRange(f, lo, hi float64) (string, bool) {
	switch {
	case math.IsNaN(f):
		return "Input should be a finite number", false
	case f < lo:
		return "Input should be greater than or equal to " + pyBound(lo), false
	case hi >= 0 && f > hi:
		return "Input should be less than or equal to " + pyBound(hi), false
	}
	return "", true
}

// laxBool is pydantic's bool in lax mode.
func laxBool(v any) (bool, string, bool) {
	switch x := v.(type) {
	case bool:
		return x, "", true
	case pyInt:
		switch x {
		case "0":
			return false, "", true
		case "1":
			return true, "", true
		}
		return false, "Input should be a valid boolean, unable to interpret input", false
	case float64:
		switch x {
		case 0:
			return false, "", true
		case 1:
			return true, "", true
		}
		return false, "Input should be a valid boolean, unable to interpret input", false
	case string:
		switch strings.ToLower(x) {
		case "0", "off", "f", "false", "n", "no":
			return false, "", true
		case "1", "on", "t", "true", "y", "yes":
			return true, "", true
		}
		return false, "Input should be a valid boolean, unable to interpret input", false
	}
	return false, "Input should be a valid boolean", false
}

// validateTextGeneration is TextGenerationParamsCheck (fields in declaration order, the
// max_length validator after it), then StringInput on inputs.
func validateTextGeneration(req *aicRequest) []string {
	params, ok := req.params.(*object)
	if !ok {
		return []string{received("Input should be a valid dictionary or instance of TextGenerationParamsCheck", pyStr(req.params))}
	}
	var msgs []string
	field := func(name string, check func(any) (string, bool)) bool {
		v, ok := params.get(name)
		if !ok || v == nil {
			return true
		}
		if msg, ok := check(v); !ok {
			msgs = append(msgs, received(msg, name))
			return false
		}
		return true
	}
	ints := func(lo, hi float64) func(any) (string, bool) {
		return func(v any) (string, bool) { return aicInt(v, lo, hi) }
	}
	floats := func(lo, hi float64) func(any) (string, bool) {
		return func(v any) (string, bool) { return aicFloat(v, lo, hi) }
	}
	minOK := field("min_length", ints(1, 500))
	if field("max_length", ints(1, 500)) && minOK {
		minLen := 0.0
		if v, ok := params.get("min_length"); ok && v != nil {
			minLen, _ = strconv.ParseFloat(string(v.(pyInt)), 64)
		}
		if v, ok := params.get("max_length"); ok && v != nil {
			if maxLen, _ := strconv.ParseFloat(string(v.(pyInt)), 64); maxLen < minLen {
				msgs = append(msgs, received("Value error, min_length cannot be larger than max_length", "max_length"))
			}
		}
	}
	field("top_k", ints(1, -1))
	field("top_p", floats(0, 1))
	field("max_time", floats(0, 120))
	field("repetition_penalty", floats(0, 100))
	field("temperature", floats(0, 100))
	field("return_full_text", func(v any) (string, bool) { _, msg, ok := laxBool(v); return msg, ok })
	field("num_return_sequences", ints(1, 10))
	if len(msgs) > 0 {
		return msgs
	}
	if _, ok := req.inputs.(string); !ok {
		return []string{received("Input should be a valid string", pyStr(req.inputs))}
	}
	return nil
}

// aicGenerateKeys are the keyword arguments the text-generation pipeline takes: the schema's
// fields and the generate() arguments implemented here.
var aicGenerateKeys = map[string]bool{
	"min_length": true, "max_length": true, "top_k": true, "top_p": true, "max_time": true,
	"repetition_penalty": true, "temperature": true, "return_full_text": true,
	"num_return_sequences": true, "max_new_tokens": true, "min_new_tokens": true,
	"do_sample": true, "seed": true, "stop": true, "stop_sequence": true,
}

// aicGenerateParams turns validated parameters into GenerateParams over the model's defaults.
// It returns whether the prompt is to be prepended (return_full_text, default true).
func aicGenerateParams(req *aicRequest, d pipelines.GenerateParams, lora bool) (pipelines.GenerateParams, bool, *httpError) {
	params := req.params.(*object)
	var unused []string
	for _, k := range params.keys {
		if !aicGenerateKeys[k] {
			unused = append(unused, pyRepr(k))
		}
	}
	if lora {
		unused = append(unused, "'lora_adapter'")
	}
	if len(unused) > 0 {
		return d, false, errorf(kindInvalid, "The following `model_kwargs` are not used by the model: [%s] (note: typos in the generate arguments will also show up in this list)", strings.Join(unused, ", "))
	}
	full := true
	for _, k := range params.keys {
		v, _ := params.get(k)
		if v == nil {
			continue
		}
		var err *httpError
		switch k {
		case "min_length":
			d.MinLength = pyIntValue(v)
		case "max_length":
			d.MaxLength, d.MaxNewTokens = pyIntValue(v), 0
		case "top_k":
			d.TopK = pyIntValue(v)
		case "top_p":
			d.TopP = pyNumber(v)
		case "max_time":
			d.MaxTime = time.Duration(pyNumber(v) * float64(time.Second))
		case "repetition_penalty":
			d.RepetitionPenalty = pyNumber(v)
		case "temperature":
			d.Temperature = pyNumber(v)
		case "return_full_text":
			full, _, _ = laxBool(v)
		case "num_return_sequences":
			d.NumReturnSequences = pyIntValue(v)
		case "max_new_tokens":
			d.MaxNewTokens, err = kwInt(k, v)
		case "min_new_tokens":
			d.MinNewTokens, err = kwInt(k, v)
		case "do_sample":
			b, ok := v.(bool)
			if !ok {
				err = errorf(kindInvalid, "`do_sample` must be a boolean, got %s", pyStr(v))
			}
			d.DoSample = b
		case "seed":
			var n int
			if n, err = kwInt(k, v); err == nil {
				seed := uint64(n)
				d.Seed = &seed
			}
		case "stop", "stop_sequence":
			d.Stop, err = stopList(k, v)
		}
		if err != nil {
			return d, false, err
		}
	}
	if _, ok := params.get("max_new_tokens"); ok {
		d.MaxLength = 0 // transformers: max_new_tokens wins over max_length
	}
	return d, full, nil
}

func pyIntValue(v any) int {
	n, err := strconv.ParseInt(string(v.(pyInt)), 10, 64)
	if err != nil || n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func pyNumber(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case pyInt:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	}
	return math.NaN()
}

// kwInt reads a non-negative integer keyword argument.
func kwInt(key string, v any) (int, *httpError) {
	s, ok := v.(pyInt)
	if !ok {
		return 0, errorf(kindInvalid, "`%s` must be an integer, got %s", key, pyStr(v))
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, errorf(kindInvalid, "`%s` must be an integer between 0 and %d, got %s", key, math.MaxInt32, string(s))
	}
	return int(n), nil
}

// stopList reads a string or a list of strings.
func stopList(key string, v any) ([]string, *httpError) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errorf(kindInvalid, "`%s` must be a string or a list of strings", key)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errorf(kindInvalid, "`%s` must be a string or a list of strings", key)
}
