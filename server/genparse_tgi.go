package server

import (
	"math"
	"strconv"

	"github.com/infergo/infergo/pipelines"
)

// genRequest is a parsed TGI or OpenAI generation request.
type genRequest struct {
	prompts        []string // TGI: exactly one
	params         pipelines.GenerateParams
	details        bool // TGI details
	returnFullText bool // TGI return_full_text / OpenAI echo
	stream         bool // OpenAI stream
	model          string
}

// typed readers for serde-style bodies: absent or null leaves the default.
func optNum(o *object, key string) (float64, bool, *httpError) {
	v, ok := o.get(key)
	if !ok || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case float64:
		return x, true, nil
	case pyInt:
		f, err := strconv.ParseFloat(string(x), 64)
		if err == nil {
			return f, true, nil
		}
	}
	return 0, false, shapeErr(key + ": invalid type: " + jsonTypeName(v) + ", expected a number")
}

func optUint(o *object, key string) (uint64, bool, *httpError) {
	v, ok := o.get(key)
	if !ok || v == nil {
		return 0, false, nil
	}
	s, isInt := v.(pyInt)
	if !isInt {
		return 0, false, shapeErr(key + ": invalid type: " + jsonTypeName(v) + ", expected an unsigned integer")
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, false, shapeErr(key + ": invalid value: integer `" + string(s) + "`, expected an unsigned integer")
	}
	return n, true, nil
}

// optStops reads stop: a string or a list of strings (TGI takes only the list; both are
// accepted here).
func optStops(o *object, key string) ([]string, *httpError) {
	v, ok := o.get(key)
	if !ok || v == nil {
		return nil, nil
	}
	list, herr := stopList(key, v)
	if herr != nil {
		return nil, shapeErr(key + ": invalid type: " + jsonTypeName(v) + ", expected a sequence of strings")
	}
	return list, nil
}

func tgiInvalid(msg string) *httpError {
	return &httpError{kind: kindInvalid, msg: msg, pipeline: true}
}

// parseTGI reads {"inputs": str, "parameters": GenerateParameters} over d, the model's
// defaults with TGI's own defaults for the sampling knobs (greedy unless asked).
func parseTGI(body []byte, d pipelines.GenerateParams, streaming bool) (*genRequest, *httpError) {
	o, herr := parseTEIBody(body)
	if herr != nil {
		return nil, herr
	}
	in, ok := o.get("inputs")
	if !ok {
		return nil, shapeErr("missing field `inputs`")
	}
	prompt, ok := in.(string)
	if !ok {
		return nil, shapeErr("inputs: invalid type: " + jsonTypeName(in) + ", expected a string")
	}
	r := &genRequest{prompts: []string{prompt}}
	d.DoSample, d.Temperature, d.TopK, d.TopP, d.RepetitionPenalty, d.Seed = false, 1, 0, 1, 1, nil
	d.NumReturnSequences, d.MaxLength, d.MinLength = 1, 0, 0
	pv, _ := o.get("parameters")
	if pv == nil {
		r.params = d
		return r, nil
	}
	p, ok := pv.(*object)
	if !ok {
		return nil, shapeErr("parameters: invalid type: " + jsonTypeName(pv) + ", expected struct GenerateParameters")
	}
	warp := false
	if d.DoSample, herr = optBool(p, "do_sample", false); herr != nil {
		return nil, herr
	}
	if t, set, herr := optNum(p, "temperature"); herr != nil {
		return nil, herr
	} else if set {
		if t <= 0 {
			return nil, tgiInvalid("`temperature` must be strictly positive")
		}
		d.Temperature, warp = t, warp || t != 1
	}
	if rp, set, herr := optNum(p, "repetition_penalty"); herr != nil {
		return nil, herr
	} else if set {
		if rp <= 0 {
			return nil, tgiInvalid("`repetition_penalty` must be strictly positive")
		}
		d.RepetitionPenalty = rp
	}
	if fp, set, herr := optNum(p, "frequency_penalty"); herr != nil {
		return nil, herr
	} else if set && fp != 0 {
		return nil, tgiInvalid("`frequency_penalty` is not supported by this server")
	}
	if k, set, herr := optUint(p, "top_k"); herr != nil {
		return nil, herr
	} else if set {
		if k == 0 {
			return nil, tgiInvalid("`top_k` must be strictly positive")
		}
		d.TopK, warp = int(min(k, math.MaxInt32)), true
	}
	if tp, set, herr := optNum(p, "top_p"); herr != nil {
		return nil, herr
	} else if set {
		if tp <= 0 || tp >= 1 {
			return nil, tgiInvalid("`top_p` must be > 0.0 and < 1.0")
		}
		d.TopP, warp = tp, true
	}
	if tp, set, herr := optNum(p, "typical_p"); herr != nil {
		return nil, herr
	} else if set {
		if tp <= 0 || tp >= 1 {
			return nil, tgiInvalid("`typical_p` must be > 0.0 and < 1.0")
		}
		return nil, tgiInvalid("`typical_p` is not supported by this server")
	}
	// TGI samples when any warper is set, do_sample or not.
	d.DoSample = d.DoSample || warp
	if n, set, herr := optUint(p, "max_new_tokens"); herr != nil {
		return nil, herr
	} else if set {
		if n == 0 {
			return nil, tgiInvalid("`max_new_tokens` must be strictly positive")
		}
		d.MaxNewTokens = int(min(n, math.MaxInt32))
	}
	if n, set, herr := optUint(p, "best_of"); herr != nil {
		return nil, herr
	} else if set && n != 1 {
		if streaming {
			return nil, tgiInvalid("`best_of` != 1 is not supported when streaming tokens")
		}
		return nil, tgiInvalid("`best_of` != 1 is not supported by this server")
	}
	if n, set, herr := optUint(p, "top_n_tokens"); herr != nil {
		return nil, herr
	} else if set && n != 0 {
		return nil, tgiInvalid("`top_n_tokens` is not supported by this server")
	}
	if s, set, herr := optUint(p, "seed"); herr != nil {
		return nil, herr
	} else if set {
		d.Seed = &s
	}
	if d.Stop, herr = optStops(p, "stop"); herr != nil {
		return nil, herr
	}
	if r.details, herr = optBool(p, "details", false); herr != nil {
		return nil, herr
	}
	if _, herr = optBool(p, "decoder_input_details", false); herr != nil {
		return nil, herr
	}
	if r.returnFullText, herr = optBool(p, "return_full_text", false); herr != nil {
		return nil, herr
	}
	if w, herr := optBool(p, "watermark", false); herr != nil {
		return nil, herr
	} else if w {
		return nil, tgiInvalid("`watermark` is not supported by this server")
	}
	for _, k := range []string{"truncate", "grammar", "adapter_id"} {
		if v, ok := p.get(k); ok && v != nil {
			return nil, tgiInvalid("`" + k + "` is not supported by this server")
		}
	}
	r.params = d
	return r, nil
}

// parseCompletion reads an OpenAI completions request: prompt (string or list), max_tokens
// (default 16), temperature (default 1; 0 is greedy), top_p, n, stop, seed, stream, echo.
func parseCompletion(body []byte) (*genRequest, *httpError) {
	var d pipelines.GenerateParams
	o, herr := parseTEIBody(body)
	if herr != nil {
		return nil, herr
	}
	r := &genRequest{}
	pv, ok := o.get("prompt")
	if !ok {
		return nil, shapeErr("missing field `prompt`")
	}
	switch x := pv.(type) {
	case string:
		r.prompts = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, shapeErr("prompt: invalid type: " + jsonTypeName(e) + ", expected a string")
			}
			r.prompts = append(r.prompts, s)
		}
		if len(r.prompts) == 0 {
			return nil, newError(kindEmpty, "`prompt` cannot be empty")
		}
	default:
		return nil, shapeErr("prompt: invalid type: " + jsonTypeName(pv) + ", expected a string or a sequence of strings")
	}
	if m, ok := o.get("model"); ok && m != nil {
		if r.model, ok = m.(string); !ok {
			return nil, shapeErr("model: invalid type: " + jsonTypeName(m) + ", expected a string")
		}
	}
	d.DoSample, d.Temperature, d.TopK, d.TopP, d.RepetitionPenalty, d.Seed = true, 1, 0, 1, 1, nil
	d.MaxNewTokens, d.MaxLength, d.MinLength, d.MinNewTokens, d.NumReturnSequences = 16, 0, 0, 0, 1
	if t, set, herr := optNum(o, "temperature"); herr != nil {
		return nil, herr
	} else if set {
		if t < 0 || t > 2 {
			return nil, tgiInvalid("`temperature` must be between 0 and 2")
		}
		if t == 0 {
			d.DoSample = false
		} else {
			d.Temperature = t
		}
	}
	if tp, set, herr := optNum(o, "top_p"); herr != nil {
		return nil, herr
	} else if set {
		if tp <= 0 || tp > 1 {
			return nil, tgiInvalid("`top_p` must be > 0.0 and <= 1.0")
		}
		d.TopP = tp
	}
	for _, k := range []string{"frequency_penalty", "presence_penalty"} {
		if f, set, herr := optNum(o, k); herr != nil {
			return nil, herr
		} else if set && f != 0 {
			return nil, tgiInvalid("`" + k + "` is not supported by this server")
		}
	}
	if n, set, herr := optUint(o, "max_tokens"); herr != nil {
		return nil, herr
	} else if set {
		if n == 0 {
			return nil, tgiInvalid("`max_tokens` must be strictly positive")
		}
		d.MaxNewTokens = int(min(n, math.MaxInt32))
	}
	if n, set, herr := optUint(o, "n"); herr != nil {
		return nil, herr
	} else if set {
		if n == 0 || n > 10 {
			return nil, tgiInvalid("`n` must be between 1 and 10")
		}
		d.NumReturnSequences = int(n)
	}
	if s, set, herr := optUint(o, "seed"); herr != nil {
		return nil, herr
	} else if set {
		d.Seed = &s
	}
	if d.Stop, herr = optStops(o, "stop"); herr != nil {
		return nil, herr
	}
	if r.stream, herr = optBool(o, "stream", false); herr != nil {
		return nil, herr
	}
	if r.returnFullText, herr = optBool(o, "echo", false); herr != nil {
		return nil, herr
	}
	for _, k := range []string{"logprobs", "suffix", "logit_bias"} {
		if v, ok := o.get(k); ok && v != nil {
			return nil, tgiInvalid("`" + k + "` is not supported by this server")
		}
	}
	if n, set, herr := optUint(o, "best_of"); herr != nil {
		return nil, herr
	} else if set && n != 1 {
		return nil, tgiInvalid("`best_of` != 1 is not supported by this server")
	}
	if r.stream && (len(r.prompts) > 1 || d.NumReturnSequences > 1) {
		return nil, tgiInvalid("streaming supports one prompt and n = 1")
	}
	r.params = d
	return r, nil
}
