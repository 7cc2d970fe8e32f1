package server

import (
	"github.com/valyala/fasthttp"
)

// handleOpenAI is POST /v1/embeddings (and /embeddings), OpenAI's embeddings API as TEI
// serves it: {"input": str | [str], "model", "user", "encoding_format": "float" | "base64",
// "dimensions"} → {"object":"list","data":[{"object":"embedding","embedding":…,"index":i}],
// "model":…,"usage":{"prompt_tokens","total_tokens"}}. Embeddings are normalised and inputs
// truncated, as TEI does. Errors use TEI's OpenAI shape {"message","code","type"}, which the
// OpenAI clients read as well (they take body["error"] or else the body itself).
func (s *Server) handleOpenAI(rc *fasthttp.RequestCtx, st *reqState) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	texts, single, herr := teiTexts(o, "input")
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	base64 := false
	if v, ok := o.get("encoding_format"); ok && v != nil {
		switch v {
		case "float":
		case "base64":
			base64 = true
		default:
			s.writeError(rc, st, shapeErr("encoding_format: unknown variant, expected `float` or `base64`"))
			return
		}
	}
	for _, k := range []string{"model", "user"} {
		if v, ok := o.get(k); ok && v != nil {
			if _, isStr := v.(string); !isStr {
				s.writeError(rc, st, shapeErr(k+": invalid type: "+jsonTypeName(v)+", expected a string"))
				return
			}
		}
	}
	dims, herr := optDimensions(o)
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
	emb := s.embedder(rc, st, m)
	if emb == nil || (!single && !s.checkBatch(rc, st, m, len(texts))) {
		return
	}
	opts, _ := teiEmbedOptions(&object{vals: map[string]any{}}, true)
	opts.Dimensions = dims
	vecs, stats, err := emb.Embed(call.ctx, texts, opts)
	if err == nil && len(vecs) != len(texts) {
		s.writeError(rc, st, shapeError(false, len(vecs), len(texts)))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	if err == nil {
		dst := append(*b, `{"object":"list","data":[`...)
		for i, v := range vecs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"object":"embedding","embedding":`...)
			if base64 {
				dst = appendBase64Floats(dst, v)
			} else if dst, err = appendFloats(dst, v, floatShort); err != nil {
				err = asEncodeErr(err)
				break
			}
			dst = append(dst, `,"index":`...)
			dst = appendInt(dst, i)
			dst = append(dst, '}')
		}
		dst = append(dst, `],"model":`...)
		dst = appendJSONString(dst, m.Info.ModelID)
		dst = append(dst, `,"usage":{"prompt_tokens":`...)
		dst = appendInt(dst, stats.Tokens)
		dst = append(dst, `,"total_tokens":`...)
		dst = appendInt(dst, stats.Tokens)
		*b = append(dst, `}}`...)
	}
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	s.setTEIHeaders(rc, st, charCount(texts), stats)
	writeJSON(rc, fasthttp.StatusOK, *b)
}
