package server

import (
	"bufio"
	"context"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// Text-generation routes: api-inference-community text-generation (POST / with
// TASK=text-generation), TGI's POST /generate and POST /generate_stream, and OpenAI's
// POST /v1/completions. Every route runs the model's pipelines.TextGenerator; concurrent
// requests share decoder steps in the scheduler's decode loop.
//
// Streaming: the generation runs in its own goroutine and hands tokens to the handler over
// a channel. The handler waits for the first token (or an error) before it commits to a
// server-sent-events response, so validation errors, 429 and the like keep their status
// codes; errors after that arrive as a final SSE error event. A failed write (the client
// went away) stops the generation, which leaves the decode batch at its next step.

// runTextGeneration is the aic route's step 9 for text-generation: [{"generated_text": …}]
// per returned sequence, the prompt prepended unless return_full_text is false.
func (s *Server) runTextGeneration(ctx context.Context, m *pipelines.Model, req *aicRequest, lora bool, dst []byte) ([]byte, pipelines.Stats, *httpError) {
	params, full, herr := aicGenerateParams(req, m.Generator.GenerateDefaults(), lora)
	if herr != nil {
		return dst, pipelines.Stats{}, herr
	}
	prompt := req.inputs.(string)
	gens, stats, err := m.Generator.Generate(ctx, prompt, params, nil)
	if err != nil {
		return dst, stats, classify(ctx, err, true)
	}
	dst = append(dst, '[')
	for i, g := range gens {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"generated_text":`...)
		text := g.Text
		if full {
			text = prompt + text
		}
		dst = appendJSONString(dst, text)
		dst = append(dst, '}')
	}
	return append(dst, ']'), stats, nil
}

// generator returns the model's TextGenerator or answers that the model cannot generate.
func (s *Server) generator(rc *fasthttp.RequestCtx, st *reqState, m *pipelines.Model) pipelines.TextGenerator {
	if m.Generator == nil {
		s.writeError(rc, st, newError(kindUnsupported, "Backend error: Model is not a text generation model"))
	}
	return m.Generator
}

// genRun is one generation running in its own goroutine.
type genRun struct {
	events chan pipelines.GenerateEvent // closed when the generation has returned
	stop   chan struct{}                // closed by the consumer to stop the generation
	once   sync.Once
	gens   []pipelines.Generation
	stats  pipelines.Stats
	err    error
}

func startGeneration(ctx context.Context, g pipelines.TextGenerator, prompt string, p pipelines.GenerateParams) *genRun {
	r := &genRun{events: make(chan pipelines.GenerateEvent, 16), stop: make(chan struct{})}
	go func() {
		defer close(r.events)
		r.gens, r.stats, r.err = g.Generate(ctx, prompt, p, func(ev pipelines.GenerateEvent) error {
			select {
			case r.events <- ev:
				return nil
			case <-r.stop:
				return errClientGone
			}
		})
	}()
	return r
}

// halt stops the generation and waits for it to return.
func (r *genRun) halt() {
	r.once.Do(func() { close(r.stop) })
	for range r.events {
	}
}

// sse carries what a streaming route needs after its handler has returned.
type sse struct {
	s      *Server
	conn   net.Conn // the RequestCtx is not usable once the handler has returned
	st     *reqState
	call   *teiCall
	run    *genRun
	first  pipelines.GenerateEvent
	prompt string
	req    *genRequest
	buf    []byte
}

// begin answers an error that happened before the first token, or starts the event stream
// and hands the request's resources over to it. It returns false when it answered an error.
func (s *Server) beginStream(rc *fasthttp.RequestCtx, st *reqState, call *teiCall, run *genRun, aic bool) (pipelines.GenerateEvent, bool) {
	ev, ok := <-run.events
	if !ok {
		err := run.err
		if err == nil {
			err = errNoTokens
		}
		s.writeError(rc, st, classify(call.ctx, err, aic))
		return ev, false
	}
	rc.SetStatusCode(fasthttp.StatusOK)
	rc.SetContentType("text/event-stream")
	h := &rc.Response.Header
	h.Set("Cache-Control", "no-cache")
	h.Set("x-accel-buffering", "no")
	h.Set("x-compute-type", s.cfg.ComputeType)
	return ev, true
}

// write sends one event; a failed write means the client is gone.
func (e *sse) write(w *bufio.Writer) bool {
	// The whole stream may outlast the server's WriteTimeout; each event gets a fresh one.
	if e.conn != nil {
		_ = e.conn.SetWriteDeadline(time.Now().Add(e.s.cfg.WriteTimeout))
	}
	if _, err := w.Write(e.buf); err != nil {
		return false
	}
	return w.Flush() == nil
}

// handleGenerate is TGI's POST /generate.
func (s *Server) handleGenerate(rc *fasthttp.RequestCtx, st *reqState) {
	req, herr := parseTGI(rc.PostBody(), pipelines.GenerateParams{}, false)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	call, ok := s.begin(rc, st)
	if !ok {
		return
	}
	defer call.end()
	g := s.generator(rc, st, call.gen.model)
	if g == nil {
		return
	}
	fillDefaults(&req.params, g)
	gens, stats, err := g.Generate(call.ctx, req.prompts[0], req.params, nil)
	if err != nil {
		s.writeError(rc, st, classify(call.ctx, err, false))
		return
	}
	gen := gens[0]
	b := s.getBuf()
	defer s.putBuf(b)
	dst := append(*b, `{"generated_text":`...)
	text := gen.Text
	if req.returnFullText {
		text = req.prompts[0] + text
	}
	dst = appendJSONString(dst, text)
	if req.details {
		dst = append(dst, `,"details":{"finish_reason":`...)
		dst = appendJSONString(dst, gen.FinishReason)
		dst = append(dst, `,"generated_tokens":`...)
		dst = appendInt(dst, len(gen.Tokens))
		dst = appendSeed(dst, gen.Seed)
		dst = append(dst, `,"prefill":[],"tokens":[`...)
		for i, t := range gen.Tokens {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTGIToken(dst, t)
		}
		dst = append(dst, "]}"...)
	}
	*b = append(dst, '}')
	s.setTGIHeaders(rc, st, req.prompts[0], stats, len(gen.Tokens))
	writeJSON(rc, fasthttp.StatusOK, *b)
}

// handleGenerateStream is TGI's POST /generate_stream: one SSE event per token,
// data:{"index":n,"token":{…},"generated_text":null,"details":null}; the last event carries
// generated_text and details {finish_reason, generated_tokens, seed, input_length}.
func (s *Server) handleGenerateStream(rc *fasthttp.RequestCtx, st *reqState) {
	req, herr := parseTGI(rc.PostBody(), pipelines.GenerateParams{}, true)
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	call, g, ok := s.beginGen(rc, st)
	if !ok {
		return
	}
	fillDefaults(&req.params, g)
	run := startGeneration(call.ctx, g, req.prompts[0], req.params)
	first, ok := s.beginStream(rc, st, call, run, false)
	if !ok {
		run.halt()
		call.end()
		return
	}
	e := &sse{s: s, conn: rc.Conn(), st: st, call: call, run: run, first: first, prompt: req.prompts[0], req: req}
	rc.SetBodyStreamWriter(e.streamTGI)
}

func (e *sse) streamTGI(w *bufio.Writer) {
	defer e.call.end()
	defer e.run.halt()
	index := 0
	var last *pipelines.GenerateEvent
	event := func(ev pipelines.GenerateEvent) {
		index++
		e.buf = append(e.buf[:0], `data:{"index":`...)
		e.buf = appendInt(e.buf, index)
		e.buf = append(e.buf, `,"token":`...)
		e.buf = appendTGIToken(e.buf, ev.Token)
	}
	// Tokens go out as they come; the final one (Last) waits for the generation to return,
	// which follows at once, so that its event can carry the text and details.
	ev, ok := e.first, true
	for ok {
		if ev.Last {
			held := ev
			last = &held
		} else {
			event(ev)
			e.buf = append(e.buf, `,"generated_text":null,"details":null}`+"\n\n"...)
			if !e.write(w) {
				return
			}
		}
		ev, ok = <-e.run.events
	}
	if e.run.err != nil {
		herr := classify(e.call.ctx, e.run.err, false)
		// The request's log line is already written (fasthttp runs the stream writer
		// beside the handler's epilogue): log the failure here.
		e.s.log.Warn("generation stream failed", "request_id", e.st.id, "error", herr.Error())
		e.buf = append(e.buf[:0], "data:"...)
		e.buf = herr.appendBody(e.buf, protoTGI)
		e.buf = append(e.buf, "\n\n"...)
		e.write(w)
		return
	}
	gen := e.run.gens[0]
	if last == nil {
		// Cut by max_time after a token already sent: the summary rides on an empty token.
		n := len(gen.Tokens)
		last = &pipelines.GenerateEvent{Token: pipelines.GeneratedToken{ID: gen.Tokens[n-1].ID, LogProb: float32(math.NaN())}}
	}
	event(*last)
	e.buf = append(e.buf, `,"generated_text":`...)
	final := gen.Text
	if e.req.returnFullText {
		final = e.prompt + final
	}
	e.buf = appendJSONString(e.buf, final)
	e.buf = append(e.buf, `,"details":{"finish_reason":`...)
	e.buf = appendJSONString(e.buf, gen.FinishReason)
	e.buf = append(e.buf, `,"generated_tokens":`...)
	e.buf = appendInt(e.buf, len(gen.Tokens))
	e.buf = appendSeed(e.buf, gen.Seed)
	e.buf = append(e.buf, `,"input_length":`...)
	e.buf = appendInt(e.buf, e.run.stats.Tokens)
	e.buf = append(e.buf, "}}\n\n"...)
	e.write(w)
	e.s.metrics.stats(e.run.stats)
}

// beginGen is begin plus the model's generator, for streaming routes: the request context
// has no disconnect watcher (fasthttp's connection belongs to the stream writer once the
// handler returns); a failed write stops the generation instead.
func (s *Server) beginGen(rc *fasthttp.RequestCtx, st *reqState) (*teiCall, pipelines.TextGenerator, bool) {
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	tctx, tcancel := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errRequestTimeout)
	done := func() {
		tcancel()
		cancel(nil)
	}
	gen, err := s.holder.acquire(tctx)
	if err != nil {
		s.writeError(rc, st, classify(tctx, err, false))
		done()
		return nil, nil, false
	}
	call := &teiCall{ctx: tctx, done: done, gen: gen}
	g := s.generator(rc, st, gen.model)
	if g == nil {
		call.end()
		return nil, nil, false
	}
	return call, g, true
}

var errNoTokens = errorf(kindInternal, "generation produced no tokens")

// fillDefaults applies the model's default length to requests that did not set one.
func fillDefaults(p *pipelines.GenerateParams, g pipelines.TextGenerator) {
	d := g.GenerateDefaults()
	if p.MaxNewTokens == 0 && p.MaxLength == 0 {
		p.MaxNewTokens = d.MaxNewTokens
	}
	if p.NumReturnSequences == 0 {
		p.NumReturnSequences = 1
	}
}

func appendTGIToken(dst []byte, t pipelines.GeneratedToken) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendInt(dst, int(t.ID))
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, t.Text)
	dst = append(dst, `,"logprob":`...)
	dst = appendLogProb(dst, t.LogProb)
	dst = append(dst, `,"special":`...)
	dst = appendBool(dst, t.Special)
	return append(dst, '}')
}

func appendLogProb(dst []byte, lp float32) []byte {
	if math.IsNaN(float64(lp)) || math.IsInf(float64(lp), 0) {
		return append(dst, "null"...)
	}
	dst, _ = appendJSONFloat(dst, lp, floatShort)
	return dst
}

func appendSeed(dst []byte, seed *uint64) []byte {
	dst = append(dst, `,"seed":`...)
	if seed == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendUint(dst, *seed, 10)
}

// setTGIHeaders writes TGI's response headers (times in ms, x-compute-time in seconds).
func (s *Server) setTGIHeaders(rc *fasthttp.RequestCtx, st *reqState, prompt string, stats pipelines.Stats, generated int) {
	h := &rc.Response.Header
	total := time.Since(st.start)
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	h.Set("x-compute-type", s.cfg.ComputeType)
	h.Set("x-compute-time", strconv.FormatFloat(total.Seconds(), 'f', -1, 64))
	h.Set("x-compute-characters", strconv.Itoa(charCount([]string{prompt})))
	h.Set("x-total-time", ms(total))
	h.Set("x-validation-time", ms(stats.Tokenize))
	h.Set("x-queue-time", ms(stats.Queue))
	h.Set("x-inference-time", ms(stats.Inference))
	if generated > 0 {
		h.Set("x-time-per-token", ms(stats.Inference/time.Duration(generated)))
	}
	h.Set("x-prompt-tokens", strconv.Itoa(stats.Tokens))
	h.Set("x-generated-tokens", strconv.Itoa(generated))
	s.metrics.stats(stats)
}
