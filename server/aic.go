package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// handleAIC is the api-inference-community POST route (routes.py pipeline_route), any path.
// The order of the steps decides statuses and headers, so it follows upstream exactly:
//
//  2. unknown task → 400, before the body or the model is touched;
//  4. the body (fasthttp has read it, bounded by MaxBodyBytes → 413);
//  5. the pipeline: wait for the model (bounded by RequestTimeout); a failed load → 500 with
//     its text; a task this model cannot run → 500 "not a valid pipeline";
//  7. normalise and validate the payload → 400 (string or pydantic-style list);
//  9. run the pipeline → 200, or 400/429/500 from the pipeline's error.
//
// Only step-9 answers carry x-compute-time, x-compute-type and access-control-expose-headers;
// only 200s carry x-compute-characters.
func (s *Server) handleAIC(rc *fasthttp.RequestCtx, st *reqState) {
	task := s.cfg.Task
	if task != "" && !knownTasks[task] {
		s.writeError(rc, st, notRecognized(task))
		return
	}
	ctx, done := s.requestContext(rc)
	defer done()
	g, err := s.holder.acquire(ctx)
	if err != nil {
		s.writeError(rc, st, classify(ctx, err, true))
		return
	}
	defer g.release()
	m := g.model
	if isASR(task, m) { // audio bodies: aicasr.go
		s.handleASR(ctx, rc, st, m)
		return
	}
	if task == "" {
		if task = m.Info.Task; !knownTasks[task] {
			s.writeError(rc, st, notRecognized(task))
			return
		}
	}
	if !aicServes(m, task) {
		// The containers' get_pipeline raises this for a task the image does not implement.
		s.writeError(rc, st, errorf(kindUnsupported, "%s is not a valid pipeline for model : %s", task, m.Info.ModelID))
		return
	}
	req, herr := normalizeNLP(rc.PostBody(), task)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}

	lora := len(rc.Request.Header.Peek("lora")) > 0
	b := s.getBuf()
	defer s.putBuf(b)
	var stats pipelines.Stats
	switch task {
	case pipelines.TaskFeatureExtraction:
		*b, stats, herr = s.runFeatureExtraction(ctx, m, req, lora, *b)
	case pipelines.TaskTextGeneration:
		*b, stats, herr = s.runTextGeneration(ctx, m, req, lora, *b)
	case pipelines.TaskSentenceSimilarity:
		*b, stats, herr = s.runSentenceSimilarity(ctx, m, req, lora, *b)
	case pipelines.TaskTokenClassification:
		*b, stats, herr = s.runTokenClassification(ctx, m, req, lora, *b)
	case pipelines.TaskTextClassification:
		*b, stats, herr = s.runTextClassification(ctx, m, req, lora, *b)
	}
	h := &rc.Response.Header
	h.Set("x-compute-time", strconv.FormatFloat(time.Since(st.start).Seconds(), 'f', 3, 64))
	h.Set("x-compute-type", s.cfg.ComputeType)
	h.Set("access-control-expose-headers", "x-compute-type, x-compute-time")
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	s.observe(st, stats)
	h.Set("x-compute-characters", strconv.Itoa(req.chars))
	writeJSON(rc, fasthttp.StatusOK, *b)
}

// aicServes reports whether model m has the pipeline task needs.
func aicServes(m *pipelines.Model, task string) bool {
	switch task {
	case pipelines.TaskFeatureExtraction, pipelines.TaskSentenceSimilarity:
		return m.Embedder != nil
	case pipelines.TaskTokenClassification:
		return m.TokenClassifier != nil
	case pipelines.TaskTextClassification:
		return m.TextClassifier != nil
	case pipelines.TaskTextGeneration:
		return m.Generator != nil
	}
	return false
}

func notRecognized(task string) *httpError {
	return errorf(kindInvalid, "The task `%s` is not recognized by api-inference-community", task)
}

var (
	featureExtractionKeys  = []string{keyNormalize, keyTruncate, keyDirection, keyDimensions}
	sentenceSimilarityKeys = []string{keyTruncate, keyDirection}
)

// runFeatureExtraction answers like the sentence-transformers image: a string gives a flat
// vector, a list gives one vector per string. A model without pooling (a plain transformers
// repo) answers like transformers' feature-extraction pipeline instead: [1][tokens][hidden]
// for a string, a list of those for a list.
func (s *Server) runFeatureExtraction(ctx context.Context, m *pipelines.Model, req *aicRequest, lora bool, dst []byte) ([]byte, pipelines.Stats, *httpError) {
	texts, single := req.texts()
	opts, herr := aicEmbedOptions(req, featureExtractionKeys, lora)
	if herr != nil {
		return dst, pipelines.Stats{}, herr
	}
	if limit := s.maxClientBatch(m); len(texts) > limit {
		return dst, pipelines.Stats{}, batchTooLarge(len(texts), limit)
	}
	var err error
	if m.Info.Pooling == "" {
		toks, stats, perr := m.Embedder.EmbedTokens(ctx, texts, opts)
		if perr != nil {
			return dst, stats, classify(ctx, perr, true)
		}
		if len(toks) != len(texts) {
			return dst, stats, shapeError(true, len(toks), len(texts))
		}
		if single {
			dst, err = appendFloats3(dst, toks[:1], floatPy)
		} else {
			dst = append(dst, '[')
			for i := range toks {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, err = appendFloats3(dst, toks[i:i+1], floatPy); err != nil {
					break
				}
			}
			dst = append(dst, ']')
		}
		return dst, stats, encodeError(err, true)
	}
	vecs, stats, perr := m.Embedder.Embed(ctx, texts, opts)
	if perr != nil {
		return dst, stats, classify(ctx, perr, true)
	}
	if len(vecs) != len(texts) {
		return dst, stats, shapeError(true, len(vecs), len(texts))
	}
	if single {
		dst, err = appendFloats(dst, vecs[0], floatPy)
	} else {
		dst, err = appendFloats2(dst, vecs, floatPy)
	}
	return dst, stats, encodeError(err, true)
}

// runSentenceSimilarity answers [cosine(source, sentence) for each sentence]. An empty
// sentences list is a 400 (TEI's message): upstream's behaviour is whatever the backend does.
func (s *Server) runSentenceSimilarity(ctx context.Context, m *pipelines.Model, req *aicRequest, lora bool, dst []byte) ([]byte, pipelines.Stats, *httpError) {
	source, sentences := req.similarity()
	opts, herr := aicEmbedOptions(req, sentenceSimilarityKeys, lora)
	if herr != nil {
		return dst, pipelines.Stats{}, herr
	}
	if len(sentences) == 0 {
		return dst, pipelines.Stats{}, newError(kindEmpty, "`inputs.sentences` cannot be empty")
	}
	if limit := s.maxClientBatch(m); len(sentences)+1 > limit {
		return dst, pipelines.Stats{}, batchTooLarge(len(sentences)+1, limit)
	}
	scores, stats, err := m.Embedder.Similarity(ctx, source, sentences, opts)
	if err != nil {
		return dst, stats, classify(ctx, err, true)
	}
	if len(scores) != len(sentences) {
		return dst, stats, shapeError(true, len(scores), len(sentences))
	}
	dst, err = appendFloats(dst, scores, floatPy)
	return dst, stats, encodeError(err, true)
}

func batchTooLarge(n, limit int) *httpError {
	return errorf(kindInvalid, "batch size %d > maximum allowed batch size %d", n, limit)
}

// shapeError reports a pipeline that broke its contract (one output per input).
func shapeError(aic bool, got, want int) *httpError {
	return &httpError{kind: kindInternal, msg: internalMsg(protoOf(aic)),
		cause: fmt.Errorf("pipeline returned %d outputs for %d inputs", got, want)}
}

// encodeError turns an output encoding failure (NaN/Inf) into the internal error.
func encodeError(err error, aic bool) *httpError {
	if err == nil {
		return nil
	}
	return &httpError{kind: kindInternal, msg: internalMsg(protoOf(aic)), cause: err}
}

func protoOf(aic bool) protocol {
	if aic {
		return protoAIC
	}
	return protoTEI
}
