package server

import (
	"context"
	"strings"

	"github.com/infergo/infergo/pipelines"
)

// The api-inference-community answers of the two classification tasks.
//
// token-classification answers transformers' pipeline output with the containers' keys:
// {"entity_group","score","word","start","end"} per entity, simple aggregation by default.
// With aggregation_strategy "none" the items are transformers' per-token dicts,
// {"entity","score","index","word","start","end"}: the hosted API documents "entity" for that
// strategy, and a token without its index is ambiguous. Parameters (hosted API):
// aggregation_strategy, ignore_labels, stride.
//
// text-classification answers [[{"label","score"}, …]], every label sorted by descending
// score (the containers' return_all_scores shape), with the hosted API's top_k and
// function_to_apply, and transformers' tokenizer keyword truncation (default true here, as
// TEI's auto-truncate).

// Parameter names.
const (
	keyAggregation  = "aggregation_strategy"
	keyIgnoreLabels = "ignore_labels"
	keyStride       = "stride"
	keyTopK         = "top_k"
	keyFunction     = "function_to_apply"
	keyTruncation   = "truncation"
)

var (
	tokenClassificationKeys = []string{keyAggregation, keyIgnoreLabels, keyStride}
	textClassificationKeys  = []string{keyTopK, keyFunction, keyTruncation}
)

// aicParams is Python's **parameters into a pipeline taking the allowed keywords: a
// non-mapping is a TypeError, so is an unknown keyword or the lora header (which aic turns
// into a lora_adapter keyword). All answer 400.
func aicParams(r *aicRequest, allowed []string, lora bool) (*object, *httpError) {
	params, ok := r.params.(*object)
	if !ok {
		return nil, errorf(kindInvalid, "__call__() argument after ** must be a mapping, not %s", pyTypeName(r.params))
	}
	for _, k := range params.keys {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, newError(kindInvalid, "__call__() got an unexpected keyword argument "+pyRepr(k))
		}
	}
	if lora {
		return nil, newError(kindInvalid, "__call__() got an unexpected keyword argument 'lora_adapter'")
	}
	return params, nil
}

// tokenClassifyOptions reads the token-classification parameters; null means the default.
func tokenClassifyOptions(r *aicRequest, lora bool) (pipelines.TokenClassifyOptions, *httpError) {
	var o pipelines.TokenClassifyOptions
	params, herr := aicParams(r, tokenClassificationKeys, lora)
	if herr != nil {
		return o, herr
	}
	if v, _ := params.get(keyAggregation); v != nil {
		s, ok := v.(string)
		agg := pipelines.Aggregation(strings.ToLower(s))
		switch agg {
		case pipelines.AggregateNone, pipelines.AggregateSimple, pipelines.AggregateFirst, pipelines.AggregateAverage, pipelines.AggregateMax:
		default:
			ok = false
		}
		if !ok {
			return o, newError(kindInvalid, "`aggregation_strategy` must be one of \"none\", \"simple\", \"first\", \"average\", \"max\"")
		}
		o.Aggregation = agg
	}
	if v, _ := params.get(keyIgnoreLabels); v != nil {
		list, ok := v.([]any)
		labels := make([]string, 0, len(list))
		for _, e := range list {
			s, isStr := e.(string)
			ok = ok && isStr
			labels = append(labels, s)
		}
		if !ok {
			return o, newError(kindInvalid, "`ignore_labels` must be a list of strings")
		}
		o.IgnoreLabels = labels
	}
	if v, _ := params.get(keyStride); v != nil {
		n, ok := nonNegativeInt(v)
		if !ok {
			return o, newError(kindInvalid, "`stride` must be a non-negative integer")
		}
		o.Stride = &n
	}
	return o, nil
}

// textClassifyOptions reads the text-classification parameters; null means the default.
func textClassifyOptions(r *aicRequest, lora bool) (pipelines.TextClassifyOptions, *httpError) {
	o := pipelines.TextClassifyOptions{Truncate: true}
	params, herr := aicParams(r, textClassificationKeys, lora)
	if herr != nil {
		return o, herr
	}
	if v, _ := params.get(keyTopK); v != nil {
		n, ok := positiveInt(v)
		if !ok {
			return o, newError(kindInvalid, "`top_k` must be a positive integer")
		}
		o.TopK = n
	}
	if v, _ := params.get(keyFunction); v != nil {
		s, ok := v.(string)
		fn := pipelines.ClassificationFunction(strings.ToLower(s))
		switch fn {
		case pipelines.FunctionSigmoid, pipelines.FunctionSoftmax, pipelines.FunctionNone:
		default:
			ok = false
		}
		if !ok {
			return o, newError(kindInvalid, "`function_to_apply` must be one of \"sigmoid\", \"softmax\", \"none\"")
		}
		o.Function = fn
	}
	if v, _ := params.get(keyTruncation); v != nil {
		b, ok := v.(bool)
		if !ok {
			return o, newError(kindInvalid, "`truncation` must be a boolean")
		}
		o.Truncate = b
	}
	return o, nil
}

// nonNegativeInt accepts a JSON integer in [0, MaxInt32].
func nonNegativeInt(v any) (int, bool) {
	if s, ok := v.(pyInt); ok && string(s) == "0" {
		return 0, true
	}
	return positiveInt(v)
}

func (s *Server) runTokenClassification(ctx context.Context, m *pipelines.Model, req *aicRequest, lora bool, dst []byte) ([]byte, pipelines.Stats, *httpError) {
	opts, herr := tokenClassifyOptions(req, lora)
	if herr != nil {
		return dst, pipelines.Stats{}, herr
	}
	text := req.inputs.(string) // validated by normalizeNLP
	ents, stats, err := m.TokenClassifier.ClassifyTokens(ctx, []string{text}, opts)
	if err != nil {
		return dst, stats, classify(ctx, err, true)
	}
	if len(ents) != 1 {
		return dst, stats, shapeError(true, len(ents), 1)
	}
	dst, err = appendEntities(dst, ents[0], opts.Aggregation == pipelines.AggregateNone)
	return dst, stats, encodeError(err, true)
}

func (s *Server) runTextClassification(ctx context.Context, m *pipelines.Model, req *aicRequest, lora bool, dst []byte) ([]byte, pipelines.Stats, *httpError) {
	opts, herr := textClassifyOptions(req, lora)
	if herr != nil {
		return dst, pipelines.Stats{}, herr
	}
	text := req.inputs.(string) // validated by normalizeNLP
	labels, stats, err := m.TextClassifier.Classify(ctx, []pipelines.TextInput{{Text: text}}, opts)
	if err != nil {
		return dst, stats, classify(ctx, err, true)
	}
	if len(labels) != 1 {
		return dst, stats, shapeError(true, len(labels), 1)
	}
	dst = append(dst, '[')
	dst, err = appendLabelScores(dst, labels[0], floatPy, false)
	dst = append(dst, ']')
	return dst, stats, encodeError(err, true)
}

// appendEntities writes transformers' dicts in its key order: per token ("entity", "score",
// "index", "word", "start", "end") or per group ("entity_group", "score", "word", "start",
// "end"). Scores are numpy float32 widened as Python prints them.
func appendEntities(dst []byte, ents []pipelines.Entity, tokens bool) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, e := range ents {
		if i > 0 {
			dst = append(dst, ',')
		}
		if tokens {
			dst = append(dst, `{"entity":`...)
		} else {
			dst = append(dst, `{"entity_group":`...)
		}
		dst = appendJSONString(dst, e.Label)
		dst = append(dst, `,"score":`...)
		if dst, err = appendJSONFloat(dst, e.Score, floatPy); err != nil {
			return dst, err
		}
		if tokens {
			dst = append(dst, `,"index":`...)
			dst = appendInt(dst, e.Index)
		}
		dst = append(dst, `,"word":`...)
		dst = appendJSONString(dst, e.Word)
		dst = append(dst, `,"start":`...)
		dst = appendInt(dst, e.Start)
		dst = append(dst, `,"end":`...)
		dst = appendInt(dst, e.End)
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// appendLabelScores writes [{"label","score"}, …] (transformers' key order), or TEI's
// Prediction order {"score","label"} when scoreFirst.
func appendLabelScores(dst []byte, labels []pipelines.LabelScore, m floatMode, scoreFirst bool) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, l := range labels {
		if i > 0 {
			dst = append(dst, ',')
		}
		if scoreFirst {
			dst = append(dst, `{"score":`...)
			if dst, err = appendJSONFloat(dst, l.Score, m); err != nil {
				return dst, err
			}
			dst = append(dst, `,"label":`...)
			dst = appendJSONString(dst, l.Label)
		} else {
			dst = append(dst, `{"label":`...)
			dst = appendJSONString(dst, l.Label)
			dst = append(dst, `,"score":`...)
			if dst, err = appendJSONFloat(dst, l.Score, m); err != nil {
				return dst, err
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// validateString is StringInput (a pydantic RootModel[str]): anything but a string fails at
// the root, so the message quotes the Python value.
func validateString(v any) []string {
	if _, ok := v.(string); ok {
		return nil
	}
	return []string{received("Input should be a valid string", pyStr(v))}
}
