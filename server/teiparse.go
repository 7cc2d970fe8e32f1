package server

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/infergo/infergo/pipelines"
)

// Decoding of TEI and OpenAI request bodies. TEI deserialises with serde behind axum: a body
// that is not JSON is a 400, JSON of the wrong shape a 422, unknown fields are ignored and
// field names are case-sensitive. Messages follow axum's wording.

func syntaxError(detail string) *httpError {
	return newError(kindSyntax, "Failed to parse the request body as JSON: "+detail)
}

func shapeErr(detail string) *httpError {
	return newError(kindInvalid, "Failed to deserialize the JSON body into the target type: "+detail)
}

// parseTEIBody parses a TEI/OpenAI body, which must be a JSON object.
func parseTEIBody(body []byte) (*object, *httpError) {
	if !utf8.Valid(body) {
		return nil, syntaxError("invalid UTF-8")
	}
	v, err := parseJSON(body, false)
	if err != nil {
		if je, ok := err.(*jsonError); ok {
			return nil, syntaxError(je.msg + " at offset " + strconv.Itoa(je.off))
		}
		return nil, syntaxError(err.Error())
	}
	o, ok := v.(*object)
	if !ok {
		return nil, shapeErr("invalid type: " + jsonTypeName(v) + ", expected a JSON object")
	}
	return o, nil
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case pyInt:
		return "integer"
	case float64:
		return "floating point"
	case []any:
		return "sequence"
	}
	return "map"
}

// optBool reads an optional boolean; null or absent gives def.
func optBool(o *object, key string, def bool) (bool, *httpError) {
	v, ok := o.get(key)
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return def, shapeErr(key + ": invalid type: " + jsonTypeName(v) + ", expected a boolean")
	}
	return b, nil
}

// errUnsupportedPrompt answers prompt_name: the pipelines contract has no prompts yet.
var errUnsupportedPrompt = newError(kindInvalid, "`prompt_name` is not supported by this server")

// teiEmbedOptions reads truncate, truncation_direction, prompt_name and, when withEmbed,
// normalize (default true) and dimensions.
func teiEmbedOptions(o *object, withEmbed bool) (pipelines.EmbedOptions, *httpError) {
	// TEI: truncate defaults to --auto-truncate, true in the reference snapshot.
	opts := pipelines.EmbedOptions{Truncate: true}
	var herr *httpError
	if opts.Truncate, herr = optBool(o, keyTruncate, true); herr != nil {
		return opts, herr
	}
	if v, ok := o.get(keyDirection); ok && v != nil {
		d, ok := parseDirection(v)
		if !ok {
			return opts, shapeErr(keyDirection + ": unknown variant, expected `Left` or `Right`")
		}
		opts.TruncationDirection = d
	}
	if v, ok := o.get("prompt_name"); ok && v != nil {
		return opts, errUnsupportedPrompt
	}
	if !withEmbed {
		return opts, nil
	}
	normalize, herr := optBool(o, keyNormalize, true)
	if herr != nil {
		return opts, herr
	}
	opts.Normalize = &normalize
	if opts.Dimensions, herr = optDimensions(o); herr != nil {
		return opts, herr
	}
	return opts, nil
}

func optDimensions(o *object) (int, *httpError) {
	v, ok := o.get(keyDimensions)
	if !ok || v == nil {
		return 0, nil
	}
	n, ok := positiveInt(v)
	if !ok {
		if _, isInt := v.(pyInt); isInt {
			return 0, newError(kindInvalid, "`dimensions` must be a positive integer")
		}
		return 0, shapeErr(keyDimensions + ": invalid type: " + jsonTypeName(v) + ", expected usize")
	}
	return n, nil
}

// errTokenIDs answers inputs given as token ids, which TEI accepts but the pipelines
// contract (texts in, vectors out) cannot take yet.
var errTokenIDs = newError(kindInvalid, "token ids as inputs are not supported by this server")

// teiTexts decodes TEI's Input (a string, a list of strings, token ids or a list of token
// ids) from field key. single reports a bare string (TEI skips the batch-size check then).
func teiTexts(o *object, key string) (texts []string, single bool, herr *httpError) {
	v, ok := o.get(key)
	if !ok {
		return nil, false, shapeErr("missing field `" + key + "`")
	}
	switch x := v.(type) {
	case string:
		return []string{x}, true, nil
	case []any:
		if len(x) == 0 {
			// serde reads [] as empty token ids; TEI answers it as empty input.
			return nil, false, newError(kindEmpty, "`inputs` cannot be empty")
		}
		texts = make([]string, 0, len(x))
		for _, e := range x {
			switch e := e.(type) {
			case string:
				texts = append(texts, e)
			case pyInt, []any:
				return nil, false, errTokenIDs
			default:
				return nil, false, shapeErr(key + ": data did not match any variant of untagged enum Input")
			}
		}
		return texts, false, nil
	}
	return nil, false, shapeErr(key + ": data did not match any variant of untagged enum Input")
}

// tokenizeTexts decodes TokenizeInput: a string or a list of strings.
func tokenizeTexts(o *object) ([]string, bool, *httpError) {
	v, ok := o.get("inputs")
	if !ok {
		return nil, false, shapeErr("missing field `inputs`")
	}
	switch x := v.(type) {
	case string:
		return []string{x}, true, nil
	case []any:
		if len(x) == 0 {
			return nil, false, newError(kindEmpty, "`inputs` cannot be empty")
		}
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false, shapeErr("inputs: data did not match any variant of untagged enum TokenizeInput")
			}
			out[i] = s
		}
		return out, false, nil
	}
	return nil, false, shapeErr("inputs: data did not match any variant of untagged enum TokenizeInput")
}

// decodeIDs decodes InputIds: a list of ids (single; [] is a single empty list, as serde's
// untagged enum reads it) or a list of lists.
func decodeIDs(o *object) ([][]int32, bool, *httpError) {
	v, ok := o.get("ids")
	if !ok {
		return nil, false, shapeErr("missing field `ids`")
	}
	x, ok := v.([]any)
	if !ok {
		return nil, false, shapeErr("ids: data did not match any variant of untagged enum InputIds")
	}
	ids := func(list []any) ([]int32, *httpError) {
		out := make([]int32, len(list))
		for i, e := range list {
			n, ok := e.(pyInt)
			if !ok {
				return nil, shapeErr("ids: data did not match any variant of untagged enum InputIds")
			}
			id, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil || id < 0 || id > math.MaxInt32 {
				return nil, errorf(kindInvalid, "token id %s is out of range", n)
			}
			out[i] = int32(id)
		}
		return out, nil
	}
	if len(x) == 0 {
		return [][]int32{{}}, true, nil
	}
	if _, nested := x[0].([]any); !nested {
		one, herr := ids(x)
		return [][]int32{one}, true, herr
	}
	batch := make([][]int32, len(x))
	for i, e := range x {
		list, ok := e.([]any)
		if !ok {
			return nil, false, shapeErr("ids: data did not match any variant of untagged enum InputIds")
		}
		var herr *httpError
		if batch[i], herr = ids(list); herr != nil {
			return nil, false, herr
		}
	}
	return batch, false, nil
}
