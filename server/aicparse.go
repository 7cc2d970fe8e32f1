package server

import (
	"math"
	"strconv"

	"github.com/infergo/infergo/pipelines"
)

// api-inference-community body normalisation (validation.py normalize_payload_nlp) and the
// pydantic checks of the two text tasks served here. Messages are byte-identical to the
// Python containers'; testdata/aic_normalize.json holds CPython/pydantic 2 references.

// knownTasks is validation.py KNOWN_TASKS (translation is missing upstream, on purpose kept
// missing: TASK=translation answers 400 "not recognized" as the containers do).
var knownTasks = map[string]bool{
	// AUDIO_INPUTS
	"automatic-speech-recognition": true, "audio-to-audio": true, "speech-segmentation": true,
	"audio-classification": true,
	// IMAGE_INPUTS
	"image-classification": true, "image-segmentation": true, "image-to-text": true,
	"image-to-image": true, "object-detection": true, "zero-shot-image-classification": true,
	// TEXT_INPUTS
	"conversational": true, "feature-extraction": true, "question-answering": true,
	"sentence-similarity": true, "fill-mask": true, "table-question-answering": true,
	"tabular-classification": true, "tabular-regression": true, "summarization": true,
	"text-generation": true, "text2text-generation": true, "text-classification": true,
	"text-to-image": true, "text-to-speech": true, "token-classification": true,
	"zero-shot-classification": true,
	// TENSOR_INPUTS
	"latent-to-image": true,
}

// aicRequest is a normalised api-inference-community text request.
type aicRequest struct {
	inputs any // what validation accepted: string, []any of strings, or *object
	params any // payload["parameters"]: usually *object, but any JSON value is possible
	top    *object
	chars  int // x-compute-characters
}

// normalizeNLP decodes and validates body for task (feature-extraction, sentence-similarity,
// token-classification or text-classification) exactly like normalize_payload_nlp +
// check_inputs. Errors are 400s: a string for the UTF-8 decode error, a pydantic-style list
// for schema errors.
func normalizeNLP(body []byte, task string) (*aicRequest, *httpError) {
	if msg := utf8DecodeError(body); msg != "" {
		return nil, newError(kindInvalid, msg)
	}
	var payload any
	if v, err := parseJSON(body, true); err != nil {
		payload = string(body) // legacy raw-string mode
	} else {
		switch x := v.(type) {
		case pyInt:
			payload = string(x)
		case float64:
			payload = pyFloatString(x)
		case bool: // bool is an int in Python
			payload = pyStr(x)
		default:
			payload = v
		}
	}
	req := &aicRequest{inputs: payload, params: &object{vals: map[string]any{}}}
	if o, ok := payload.(*object); ok {
		if in, ok := o.get("inputs"); ok {
			req.inputs = in
			req.top = o
			if p, ok := o.get("parameters"); ok {
				req.params = p
			}
		}
	}
	var msgs []string
	switch task {
	case pipelines.TaskFeatureExtraction:
		msgs = validateStringOrBatch(req.inputs)
	case pipelines.TaskSentenceSimilarity:
		msgs = validateSimilarityInputs(req.inputs)
	case pipelines.TaskTextGeneration:
		msgs = validateTextGeneration(req)
	case pipelines.TaskTokenClassification, pipelines.TaskTextClassification:
		msgs = validateString(req.inputs)
	}
	if len(msgs) > 0 {
		return nil, &httpError{kind: kindInvalid, msg: msgs[0], list: msgs}
	}
	req.chars = countChars(req.inputs)
	return req, nil
}

func received(msg, what string) string {
	return msg + ": received `" + what + "` in `parameters`"
}

// validateStringOrBatch is StringOrStringBatchInputCheck: Union[List[str], str] in pydantic's
// smart mode, errors tagged by union member, then the non-empty validator.
func validateStringOrBatch(v any) []string {
	switch x := v.(type) {
	case string:
		return nil
	case []any:
		var msgs []string
		for _, e := range x {
			if _, ok := e.(string); !ok {
				msgs = append(msgs, received("Input should be a valid string", "list[str]"))
			}
		}
		if len(msgs) > 0 {
			return append(msgs, received("Input should be a valid string", "str"))
		}
		if len(x) == 0 {
			return []string{received("Value error, The inputs are invalid, at least one input is required", "[]")}
		}
		return nil
	}
	return []string{
		received("Input should be a valid list", "list[str]"),
		received("Input should be a valid string", "str"),
	}
}

// validateSimilarityInputs is SentenceSimilarityInputsCheck{source_sentence: str,
// sentences: List[str]}; extra keys are allowed.
func validateSimilarityInputs(v any) []string {
	o, ok := v.(*object)
	if !ok {
		return []string{received("Input should be a valid dictionary or instance of SentenceSimilarityInputsCheck", pyStr(v))}
	}
	var msgs []string
	if src, ok := o.get("source_sentence"); !ok {
		msgs = append(msgs, received("Field required", "source_sentence"))
	} else if _, ok := src.(string); !ok {
		msgs = append(msgs, received("Input should be a valid string", "source_sentence"))
	}
	switch s, ok := o.get("sentences"); {
	case !ok:
		msgs = append(msgs, received("Field required", "sentences"))
	default:
		list, ok := s.([]any)
		if !ok {
			msgs = append(msgs, received("Input should be a valid list", "sentences"))
			break
		}
		for _, e := range list {
			if _, ok := e.(string); !ok {
				msgs = append(msgs, received("Input should be a valid string", "sentences"))
			}
		}
	}
	return msgs
}

// texts returns validated inputs as strings and whether the request was a single string.
func (r *aicRequest) texts() ([]string, bool) {
	if s, ok := r.inputs.(string); ok {
		return []string{s}, true
	}
	list := r.inputs.([]any)
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.(string)
	}
	return out, false
}

// similarity returns validated sentence-similarity inputs.
func (r *aicRequest) similarity() (string, []string) {
	o := r.inputs.(*object)
	src, _ := o.get("source_sentence")
	list, _ := o.get("sentences")
	sents := make([]string, 0, len(list.([]any)))
	for _, e := range list.([]any) {
		sents = append(sents, e.(string))
	}
	return src.(string), sents
}

// Embedding knobs by name, shared by every dialect.
const (
	keyNormalize  = "normalize"
	keyTruncate   = "truncate"
	keyDirection  = "truncation_direction"
	keyDimensions = "dimensions"
)

// aicEmbedOptions turns parameters into EmbedOptions. Upstream passes every parameter as a
// keyword argument to the pipeline, so a non-object is Python's "argument after ** must be a
// mapping" TypeError and an unknown key is "unexpected keyword argument" (both 400). The
// TEI-style knobs are accepted in parameters, and also at the top level where the hosted
// API's clients put them for feature-extraction; the container ignores top-level keys, so
// there they count only when well-typed. lora is the request's lora header (aic turns it into
// a lora_adapter parameter, which these pipelines do not take).
func aicEmbedOptions(r *aicRequest, allowed []string, lora bool) (pipelines.EmbedOptions, *httpError) {
	o := pipelines.EmbedOptions{Truncate: true}
	params, ok := r.params.(*object)
	if !ok {
		return o, errorf(kindInvalid, "__call__() argument after ** must be a mapping, not %s", pyTypeName(r.params))
	}
	isAllowed := func(k string) bool {
		for _, a := range allowed {
			if a == k {
				return true
			}
		}
		return false
	}
	for _, k := range params.keys {
		if !isAllowed(k) {
			return o, newError(kindInvalid, "__call__() got an unexpected keyword argument "+pyRepr(k))
		}
	}
	if lora {
		return o, newError(kindInvalid, "__call__() got an unexpected keyword argument 'lora_adapter'")
	}
	if r.top != nil {
		for _, k := range allowed {
			if _, inParams := params.get(k); inParams {
				continue
			}
			if v, ok := r.top.get(k); ok {
				_ = applyEmbedOption(&o, k, v) // top-level: ignored unless valid
			}
		}
	}
	for _, k := range params.keys {
		v, _ := params.get(k)
		if err := applyEmbedOption(&o, k, v); err != nil {
			return o, err
		}
	}
	return o, nil
}

// applyEmbedOption sets one knob; null leaves the default.
func applyEmbedOption(o *pipelines.EmbedOptions, key string, v any) *httpError {
	if v == nil {
		return nil
	}
	switch key {
	case keyNormalize:
		b, ok := v.(bool)
		if !ok {
			return errorf(kindInvalid, "`%s` must be a boolean", key)
		}
		o.Normalize = &b
	case keyTruncate:
		b, ok := v.(bool)
		if !ok {
			return errorf(kindInvalid, "`%s` must be a boolean", key)
		}
		o.Truncate = b
	case keyDirection:
		d, ok := parseDirection(v)
		if !ok {
			return errorf(kindInvalid, "`%s` must be \"left\" or \"right\"", key)
		}
		o.TruncationDirection = d
	case keyDimensions:
		n, ok := positiveInt(v)
		if !ok {
			return errorf(kindInvalid, "`%s` must be a positive integer", key)
		}
		o.Dimensions = n
	}
	return nil
}

// parseDirection accepts TEI's spellings (serde aliases left/Left, right/Right).
func parseDirection(v any) (pipelines.Direction, bool) {
	switch v {
	case "left", "Left":
		return pipelines.TruncateLeft, true
	case "right", "Right":
		return pipelines.TruncateRight, true
	}
	return 0, false
}

// positiveInt accepts a JSON integer in [1, MaxInt32].
func positiveInt(v any) (int, bool) {
	s, ok := v.(pyInt)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}
