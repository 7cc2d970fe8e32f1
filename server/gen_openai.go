package server

import (
	"bufio"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// handleCompletions is OpenAI's POST /v1/completions (also /completions):
// {"id":"cmpl-…","object":"text_completion","created":…,"model":…,"choices":[{"text",
// "index","logprobs":null,"finish_reason":"stop"|"length"}],"usage":{…}}. Stop sequences are
// cut from the text, as OpenAI does. With "stream": true the answer is server-sent events of
// the same objects carrying text deltas, the last with its finish_reason, then
// "data: [DONE]". Several prompts or n > 1 give one choice each, index = prompt × n + j.
func (s *Server) handleCompletions(rc *fasthttp.RequestCtx, st *reqState) {
	req, herr := parseCompletion(rc.PostBody())
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	if req.stream {
		s.streamCompletion(rc, st, req)
		return
	}
	call, ok := s.begin(rc, st)
	if !ok {
		return
	}
	defer call.end()
	g := s.generator(rc, st, call.gen.model)
	if g == nil || !s.checkBatch(rc, st, call.gen.model, len(req.prompts)) {
		return
	}
	type result struct {
		gens  []pipelines.Generation
		stats pipelines.Stats
		err   error
	}
	results := make([]result, len(req.prompts))
	var wg sync.WaitGroup
	for i, prompt := range req.prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.gens, r.stats, r.err = g.Generate(call.ctx, prompt, req.params, nil)
		}()
	}
	wg.Wait()
	var total pipelines.Stats
	completion := 0
	for _, r := range results {
		if r.err != nil {
			s.writeError(rc, st, classify(call.ctx, r.err, false))
			return
		}
		total.Tokens += r.stats.Tokens
		total.Tokenize = max(total.Tokenize, r.stats.Tokenize)
		total.Queue = max(total.Queue, r.stats.Queue)
		total.Inference = max(total.Inference, r.stats.Inference)
		for _, gen := range r.gens {
			completion += len(gen.Tokens)
		}
	}
	b := s.getBuf()
	defer s.putBuf(b)
	dst := appendCompletionHead(*b, st.id, modelName(req, call.gen.model))
	dst = append(dst, `"choices":[`...)
	n := 0
	for i, r := range results {
		for _, gen := range r.gens {
			if n > 0 {
				dst = append(dst, ',')
			}
			text := gen.Text
			if gen.StopIndex >= 0 {
				text = text[:gen.StopIndex]
			}
			if req.returnFullText {
				text = req.prompts[i] + text
			}
			dst = appendChoice(dst, text, n, openAIFinish(gen.FinishReason))
			n++
		}
	}
	dst = append(dst, `],"usage":{"prompt_tokens":`...)
	dst = appendInt(dst, total.Tokens)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, completion)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, total.Tokens+completion)
	*b = append(dst, `}}`...)
	s.setTEIHeaders(rc, st, charCount(req.prompts), total)
	rc.Response.Header.Set("x-generated-tokens", strconv.Itoa(completion))
	writeJSON(rc, fasthttp.StatusOK, *b)
}

func modelName(req *genRequest, m *pipelines.Model) string {
	if req.model != "" {
		return req.model
	}
	return m.Info.ModelID
}

func openAIFinish(reason string) string {
	if reason == pipelines.FinishLength {
		return "length"
	}
	return "stop"
}

func appendCompletionHead(dst []byte, id, model string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, "cmpl-"+id)
	dst = append(dst, `,"object":"text_completion","created":`...)
	dst = strconv.AppendInt(dst, time.Now().Unix(), 10)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, model)
	return append(dst, ',')
}

// appendChoice writes one choice; finish "" is null.
func appendChoice(dst []byte, text string, index int, finish string) []byte {
	dst = append(dst, `{"text":`...)
	dst = appendJSONString(dst, text)
	dst = append(dst, `,"index":`...)
	dst = appendInt(dst, index)
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, finish)
	}
	return append(dst, '}')
}

func (s *Server) streamCompletion(rc *fasthttp.RequestCtx, st *reqState, req *genRequest) {
	call, g, ok := s.beginGen(rc, st)
	if !ok {
		return
	}
	run := startGeneration(call.ctx, g, req.prompts[0], req.params)
	first, ok := s.beginStream(rc, st, call, run, false)
	if !ok {
		run.halt()
		call.end()
		return
	}
	e := &sse{s: s, conn: rc.Conn(), st: st, call: call, run: run, first: first, prompt: req.prompts[0], req: req}
	model := modelName(req, call.gen.model)
	rc.SetBodyStreamWriter(func(w *bufio.Writer) { e.streamOpenAI(w, model) })
}

func (e *sse) streamOpenAI(w *bufio.Writer, model string) {
	defer e.call.end()
	defer e.run.halt()
	var sent strings.Builder // text sent so far (stop sequences cut)
	chunk := func(text, finish string) bool {
		e.buf = append(e.buf[:0], "data: "...)
		e.buf = appendCompletionHead(e.buf, e.st.id, model)
		e.buf = append(e.buf, `"choices":[`...)
		e.buf = appendChoice(e.buf, text, 0, finish)
		e.buf = append(e.buf, "]}\n\n"...)
		sent.WriteString(text)
		return e.write(w)
	}
	if e.req.returnFullText && !chunk(e.prompt, "") {
		return
	}
	ev, ok := e.first, true
	for ok {
		if ev.Safe != "" && !chunk(ev.Safe, "") {
			return
		}
		ev, ok = <-e.run.events
	}
	if e.run.err != nil {
		herr := classify(e.call.ctx, e.run.err, false)
		// The request's log line is already written (fasthttp runs the stream writer
		// beside the handler's epilogue): log the failure here.
		e.s.log.Warn("generation stream failed", "request_id", e.st.id, "error", herr.Error())
		e.buf = append(e.buf[:0], "data: "...)
		e.buf = herr.appendBody(e.buf, protoOpenAI)
		e.buf = append(e.buf, "\n\n"...)
		e.write(w)
		return
	}
	gen := e.run.gens[0]
	text := gen.Text
	if gen.StopIndex >= 0 {
		text = text[:gen.StopIndex]
	}
	if e.req.returnFullText {
		text = e.prompt + text
	}
	// The final decode may complete characters the stream withheld: send what is missing.
	rest := ""
	if done := sent.String(); strings.HasPrefix(text, done) {
		rest = text[len(done):]
	}
	if !chunk(rest, openAIFinish(gen.FinishReason)) {
		return
	}
	e.buf = append(e.buf[:0], "data: [DONE]\n\n"...)
	e.write(w)
	e.s.metrics.stats(e.run.stats)
}
