package server

import (
	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// handlePredict is TEI's POST /predict (router/src/http/server.rs predict):
// {"inputs": str | [str, str] | [[str] | [str, str], …], "truncate", "truncation_direction",
// "raw_scores"} → [{"score","label"}, …] with every label, sorted by descending score, for a
// single input (a pair is one input, encoded with the tokenizer's pair template), or one such
// list per input for a batch. Scores are softmax over the logits when the model has several
// labels and sigmoid when it has one, as TEI computes them whatever the model's problem
// type; raw_scores returns the logits.
func (s *Server) handlePredict(rc *fasthttp.RequestCtx, st *reqState) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	inputs, single, herr := predictInputs(o)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	opts, raw, herr := predictOptions(o)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	call, ok := s.begin(rc, st)
	if !ok {
		return
	}
	defer call.end()
	m := call.gen.model
	if m.TextClassifier == nil {
		s.writeError(rc, st, newError(kindUnsupported, "Backend error: Model is not a classifier model"))
		return
	}
	if !single && !s.checkBatch(rc, st, m, len(inputs)) {
		return
	}
	chars := 0
	for _, in := range inputs {
		if in.Text == "" && in.Pair == "" {
			// TEI's tokenization check, reported as its core errors are.
			s.writeError(rc, st, &httpError{kind: kindEmpty, msg: "`inputs` cannot be empty", pipeline: true})
			return
		}
		chars += charCount([]string{in.Text, in.Pair})
	}
	switch {
	case raw:
		opts.Function = pipelines.FunctionNone
	case len(m.Info.Labels) == 1:
		opts.Function = pipelines.FunctionSigmoid
	default:
		opts.Function = pipelines.FunctionSoftmax
	}
	out, stats, err := m.TextClassifier.Classify(call.ctx, inputs, opts)
	if err == nil && len(out) != len(inputs) {
		s.writeError(rc, st, shapeError(false, len(out), len(inputs)))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	if err == nil {
		if !single {
			*b = append(*b, '[')
		}
		for i, labels := range out {
			if i > 0 {
				*b = append(*b, ',')
			}
			if *b, err = appendLabelScores(*b, teiTieOrder(labels), floatShort, true); err != nil {
				break
			}
		}
		if !single {
			*b = append(*b, ']')
		}
		err = asEncodeErr(err)
	}
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	s.setTEIHeaders(rc, st, chars, stats)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

// teiTieOrder puts equal scores in TEI's order. TEI sorts ascending (stably) and reverses, so
// among equal scores the higher label id comes first; the pipeline keeps Python's order
// (lower id first).
func teiTieOrder(labels []pipelines.LabelScore) []pipelines.LabelScore {
	for lo := 0; lo < len(labels); {
		hi := lo + 1
		for hi < len(labels) && labels[hi].Score == labels[lo].Score {
			hi++
		}
		for i, j := lo, hi-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		lo = hi
	}
	return labels
}

// predictExpect is serde's description of TEI's PredictInput.
const predictExpect = "a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], [string, string], ...]"

// predictInputs decodes PredictInput as TEI's visitor does: a string; a list whose first
// element is a string is one input (a single string or a pair); a list of lists is a batch
// of single strings and pairs. single reports a non-batch (no client batch-size check).
func predictInputs(o *object) ([]pipelines.TextInput, bool, *httpError) {
	v, ok := o.get("inputs")
	if !ok {
		return nil, false, shapeErr("missing field `inputs`")
	}
	bad := func(detail string) *httpError { return shapeErr("inputs: " + detail) }
	expectString := func(e any) *httpError {
		return bad("invalid type: " + jsonTypeName(e) + ", expected a string")
	}
	switch x := v.(type) {
	case string:
		return []pipelines.TextInput{{Text: x}}, true, nil
	case []any:
		if len(x) == 0 {
			return nil, false, bad("invalid length 0, expected " + predictExpect)
		}
		switch first := x[0].(type) {
		case string:
			if len(x) == 1 {
				return []pipelines.TextInput{{Text: first}}, true, nil
			}
			second, ok := x[1].(string)
			if !ok {
				return nil, false, expectString(x[1])
			}
			if len(x) > 2 {
				if _, ok := x[2].(string); !ok {
					return nil, false, expectString(x[2])
				}
				return nil, false, bad("invalid length 3, expected " + predictExpect)
			}
			return []pipelines.TextInput{{Text: first, Pair: second, HasPair: true}}, true, nil
		case []any:
			batch := make([]pipelines.TextInput, 0, len(x))
			for i, e := range x {
				list, ok := e.([]any)
				if !ok {
					return nil, false, bad("invalid type: " + jsonTypeName(e) + ", expected a sequence")
				}
				texts := make([]string, len(list))
				for j, t := range list {
					if texts[j], ok = t.(string); !ok {
						if i == 0 {
							return nil, false, bad("data did not match any variant of untagged enum Internal")
						}
						return nil, false, expectString(t)
					}
				}
				switch len(texts) {
				case 1:
					batch = append(batch, pipelines.TextInput{Text: texts[0]})
				case 2:
					batch = append(batch, pipelines.TextInput{Text: texts[0], Pair: texts[1], HasPair: true})
				default:
					return nil, false, bad("invalid length " + itoa(len(texts)) + ", expected " + predictExpect)
				}
			}
			return batch, false, nil
		}
		return nil, false, bad("data did not match any variant of untagged enum Internal")
	}
	return nil, false, bad("invalid type: " + jsonTypeName(v) + ", expected " + predictExpect)
}

// predictOptions reads truncate (default true: TEI's auto-truncate), truncation_direction
// and raw_scores (default false).
func predictOptions(o *object) (pipelines.TextClassifyOptions, bool, *httpError) {
	var opts pipelines.TextClassifyOptions
	var herr *httpError
	if opts.Truncate, herr = optBool(o, keyTruncate, true); herr != nil {
		return opts, false, herr
	}
	if v, ok := o.get(keyDirection); ok && v != nil {
		d, ok := parseDirection(v)
		if !ok {
			return opts, false, shapeErr(keyDirection + ": unknown variant, expected `Left` or `Right`")
		}
		opts.TruncationDirection = d
	}
	raw, herr := optBool(o, "raw_scores", false)
	return opts, raw, herr
}

func itoa(n int) string { return string(appendInt(nil, n)) }
