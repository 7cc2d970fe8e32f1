package server

import (
	"context"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// text-embeddings-inference routes (router/src/http/server.rs). Each one parses and checks
// the body first (400/422 need no model), then takes the model (waiting while it loads),
// checks the client batch size against the model's limit and runs the pipeline.

// teiCall is the common frame of an inference route.
type teiCall struct {
	ctx  context.Context
	done func()
	gen  *generation
}

// begin derives the request context and acquires the model. On error it has answered.
func (s *Server) begin(rc *fasthttp.RequestCtx, st *reqState) (*teiCall, bool) {
	ctx, done := s.requestContext(rc)
	g, err := s.holder.acquire(ctx)
	if err != nil {
		s.writeError(rc, st, classify(ctx, err, false))
		done()
		return nil, false
	}
	return &teiCall{ctx: ctx, done: done, gen: g}, true
}

func (c *teiCall) end() {
	c.gen.release()
	c.done()
}

// embedder returns the model's Embedder or answers TEI's wrong-model-type error.
func (s *Server) embedder(rc *fasthttp.RequestCtx, st *reqState, m *pipelines.Model) pipelines.Embedder {
	if m.Embedder == nil {
		s.writeError(rc, st, newError(kindUnsupported, "Backend error: Model is not an embedding model"))
	}
	return m.Embedder
}

func (s *Server) checkBatch(rc *fasthttp.RequestCtx, st *reqState, m *pipelines.Model, n int) bool {
	if limit := s.maxClientBatch(m); n > limit {
		s.writeError(rc, st, batchTooLarge(n, limit))
		return false
	}
	return true
}

// setTEIHeaders writes TEI's timing and usage headers (milliseconds, integers).
func (s *Server) setTEIHeaders(rc *fasthttp.RequestCtx, st *reqState, chars int, stats pipelines.Stats) {
	h := &rc.Response.Header
	total := strconv.FormatInt(time.Since(st.start).Milliseconds(), 10)
	h.Set("x-compute-type", s.cfg.ComputeType)
	h.Set("x-compute-time", total)
	h.Set("x-total-time", total)
	h.Set("x-tokenization-time", strconv.FormatInt(stats.Tokenize.Milliseconds(), 10))
	h.Set("x-queue-time", strconv.FormatInt(stats.Queue.Milliseconds(), 10))
	h.Set("x-inference-time", strconv.FormatInt(stats.Inference.Milliseconds(), 10))
	h.Set("x-compute-characters", strconv.Itoa(chars))
	h.Set("x-compute-tokens", strconv.Itoa(stats.Tokens))
	s.observe(st, stats)
}

func charCount(texts []string) int {
	n := 0
	for _, t := range texts {
		n += utf8.RuneCountInString(t)
	}
	return n
}

// handleEmbed is POST /embed: pooled embeddings, always 2-D.
func (s *Server) handleEmbed(rc *fasthttp.RequestCtx, st *reqState) {
	s.embedRoute(rc, st, false)
}

// handleEmbedAll is POST /embed_all: token embeddings, [input][token][hidden].
func (s *Server) handleEmbedAll(rc *fasthttp.RequestCtx, st *reqState) {
	s.embedRoute(rc, st, true)
}

func (s *Server) embedRoute(rc *fasthttp.RequestCtx, st *reqState, tokens bool) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	texts, single, herr := teiTexts(o, "inputs")
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	opts, herr := teiEmbedOptions(o, !tokens)
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
	b := s.getBuf()
	defer s.putBuf(b)
	var stats pipelines.Stats
	var err error
	if tokens {
		var toks [][][]float32
		if toks, stats, err = emb.EmbedTokens(call.ctx, texts, opts); err == nil {
			if len(toks) != len(texts) {
				s.writeError(rc, st, shapeError(false, len(toks), len(texts)))
				return
			}
			*b, err = appendFloats3(*b, toks, floatShort)
			err = asEncodeErr(err)
		}
	} else {
		var vecs [][]float32
		if vecs, stats, err = emb.Embed(call.ctx, texts, opts); err == nil {
			if len(vecs) != len(texts) {
				s.writeError(rc, st, shapeError(false, len(vecs), len(texts)))
				return
			}
			*b, err = appendFloats2(*b, vecs, floatShort)
			err = asEncodeErr(err)
		}
	}
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	s.setTEIHeaders(rc, st, charCount(texts), stats)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

// asEncodeErr keeps an output encoding failure out of classify's pipeline-error mapping.
func asEncodeErr(err error) error {
	if err == nil {
		return nil
	}
	return encodeError(err, false)
}

// handleSimilarity is POST /similarity: {"inputs":{"source_sentence","sentences"},
// "parameters":{truncate, truncation_direction, prompt_name}} → [cosine, ...].
func (s *Server) handleSimilarity(rc *fasthttp.RequestCtx, st *reqState) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	source, sentences, opts, herr := similarityRequest(o)
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
	if emb == nil || !s.checkBatch(rc, st, m, len(sentences)+1) { // +1: the source sentence
		return
	}
	scores, stats, err := emb.Similarity(call.ctx, source, sentences, opts)
	if err == nil && len(scores) != len(sentences) {
		s.writeError(rc, st, shapeError(false, len(scores), len(sentences)))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	if err == nil {
		*b, err = appendFloats(*b, scores, floatShort)
		err = asEncodeErr(err)
	}
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	s.setTEIHeaders(rc, st, utf8.RuneCountInString(source)+charCount(sentences), stats)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

func similarityRequest(o *object) (string, []string, pipelines.EmbedOptions, *httpError) {
	opts := pipelines.EmbedOptions{Truncate: true}
	v, ok := o.get("inputs")
	if !ok {
		return "", nil, opts, shapeErr("missing field `inputs`")
	}
	in, ok := v.(*object)
	if !ok {
		return "", nil, opts, shapeErr("inputs: invalid type: " + jsonTypeName(v) + ", expected struct SimilarityInput")
	}
	sv, ok := in.get("source_sentence")
	if !ok {
		return "", nil, opts, shapeErr("inputs: missing field `source_sentence`")
	}
	source, ok := sv.(string)
	if !ok {
		return "", nil, opts, shapeErr("inputs.source_sentence: invalid type: " + jsonTypeName(sv) + ", expected a string")
	}
	lv, ok := in.get("sentences")
	if !ok {
		return "", nil, opts, shapeErr("inputs: missing field `sentences`")
	}
	list, ok := lv.([]any)
	if !ok {
		return "", nil, opts, shapeErr("inputs.sentences: invalid type: " + jsonTypeName(lv) + ", expected a sequence")
	}
	sentences := make([]string, len(list))
	for i, e := range list {
		if sentences[i], ok = e.(string); !ok {
			return "", nil, opts, shapeErr("inputs.sentences: invalid type: " + jsonTypeName(e) + ", expected a string")
		}
	}
	if len(sentences) == 0 {
		return "", nil, opts, newError(kindEmpty, "`inputs.sentences` cannot be empty")
	}
	if pv, ok := o.get("parameters"); ok && pv != nil {
		p, ok := pv.(*object)
		if !ok {
			return "", nil, opts, shapeErr("parameters: invalid type: " + jsonTypeName(pv) + ", expected struct SimilarityParameters")
		}
		var herr *httpError
		if opts, herr = teiEmbedOptions(p, false); herr != nil {
			return "", nil, opts, herr
		}
	}
	return source, sentences, opts, nil
}

// handleTokenize is POST /tokenize: [[{"id","text","special","start","stop"}]], offsets in
// bytes, start/stop null for special tokens (TEI's SimpleToken).
func (s *Server) handleTokenize(rc *fasthttp.RequestCtx, st *reqState) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	texts, single, herr := tokenizeTexts(o)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	addSpecial, herr := optBool(o, "add_special_tokens", true)
	if herr == nil {
		if v, ok := o.get("prompt_name"); ok && v != nil {
			herr = errUnsupportedPrompt
		}
	}
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
	tok := s.tokenizer(rc, st, m)
	if tok == nil || (!single && !s.checkBatch(rc, st, m, len(texts))) {
		return
	}
	out, err := tok.Tokenize(call.ctx, texts, addSpecial)
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	if len(out) != len(texts) {
		s.writeError(rc, st, shapeError(false, len(out), len(texts)))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = appendTokens(*b, out)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

func appendTokens(dst []byte, out [][]pipelines.Token) []byte {
	optInt := func(dst []byte, p *int) []byte {
		if p == nil {
			return append(dst, "null"...)
		}
		return appendInt(dst, *p)
	}
	dst = append(dst, '[')
	for i, toks := range out {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		for j, t := range toks {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendInt(dst, int(t.ID))
			dst = append(dst, `,"text":`...)
			dst = appendJSONString(dst, t.Text)
			dst = append(dst, `,"special":`...)
			dst = appendBool(dst, t.Special)
			dst = append(dst, `,"start":`...)
			dst = optInt(dst, t.Start)
			dst = append(dst, `,"stop":`...)
			dst = optInt(dst, t.Stop)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

func (s *Server) tokenizer(rc *fasthttp.RequestCtx, st *reqState, m *pipelines.Model) pipelines.TextTokenizer {
	if m.Tokenizer == nil {
		s.writeError(rc, st, newError(kindUnsupported, "Backend error: Model has no tokenizer"))
	}
	return m.Tokenizer
}

// handleDecode is POST /decode: {"ids": [id] | [[id]], "skip_special_tokens": true} → [str].
func (s *Server) handleDecode(rc *fasthttp.RequestCtx, st *reqState) {
	o, herr := parseTEIBody(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	ids, single, herr := decodeIDs(o)
	if herr == nil {
		var skip bool
		skip, herr = optBool(o, "skip_special_tokens", true)
		if herr == nil {
			s.decode(rc, st, ids, single, skip)
			return
		}
	}
	s.writeError(rc, st, herr)
}

func (s *Server) decode(rc *fasthttp.RequestCtx, st *reqState, ids [][]int32, single, skip bool) {
	call, ok := s.begin(rc, st)
	if !ok {
		return
	}
	defer call.end()
	m := call.gen.model
	tok := s.tokenizer(rc, st, m)
	if tok == nil || (!single && !s.checkBatch(rc, st, m, len(ids))) {
		return
	}
	texts, err := tok.Decode(call.ctx, ids, skip)
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	if len(texts) != len(ids) {
		s.writeError(rc, st, shapeError(false, len(texts), len(ids)))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(*b, '[')
	for i, t := range texts {
		if i > 0 {
			*b = append(*b, ',')
		}
		*b = appendJSONString(*b, t)
	}
	*b = append(*b, ']')
	writeJSON(rc, fasthttp.StatusOK, *b)
}
