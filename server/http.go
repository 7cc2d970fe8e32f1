package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// Routing, middleware (request ids, panic recovery, gzip, metrics, logs) and the small GET
// routes. Inference routes live in aic.go, tei.go and openai.go.

// route is one endpoint. name labels metrics and logs; it is a fixed template, never the raw
// path, so arbitrary POST paths cannot blow up metric cardinality.
type route struct {
	name   string
	proto  protocol
	handle func(s *Server, rc *fasthttp.RequestCtx, st *reqState)
}

var (
	routeOK         = &route{"GET /*", protoAIC, (*Server).handleOK}
	routeHealth     = &route{"GET /health", protoTEI, (*Server).handleHealth}
	routeInfo       = &route{"GET /info", protoTEI, (*Server).handleInfo}
	routeMetrics    = &route{"GET /metrics", protoTEI, (*Server).handleMetrics}
	routeAIC        = &route{"POST /*", protoAIC, (*Server).handleAIC}
	routeEmbed      = &route{"POST /embed", protoTEI, (*Server).handleEmbed}
	routeEmbedAll   = &route{"POST /embed_all", protoTEI, (*Server).handleEmbedAll}
	routeSimilarity = &route{"POST /similarity", protoTEI, (*Server).handleSimilarity}
	routeTokenize   = &route{"POST /tokenize", protoTEI, (*Server).handleTokenize}
	routeDecode     = &route{"POST /decode", protoTEI, (*Server).handleDecode}
	routePredict    = &route{"POST /predict", protoTEI, (*Server).handlePredict}
	routeOpenAI     = &route{"POST /v1/embeddings", protoOpenAI, (*Server).handleOpenAI}
	routeGenerate   = &route{"POST /generate", protoTGI, (*Server).handleGenerate}
	routeGenStream  = &route{"POST /generate_stream", protoTGI, (*Server).handleGenerateStream}
	routeComplete   = &route{"POST /v1/completions", protoOpenAI, (*Server).handleCompletions}
	routeMethod     = &route{"other", protoAIC, (*Server).handleMethodNotAllowed}
	routeWebhook    = &route{"POST /webhooks/hub", protoTEI, (*Server).handleWebhook}
	routeReload     = &route{"POST /admin/reload", protoTEI, (*Server).handleAdminReload}
)

func selectRoute(method, path string) *route {
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		switch path {
		case "/health":
			return routeHealth
		case "/info":
			return routeInfo
		case "/metrics":
			return routeMetrics
		}
		return routeOK
	case fasthttp.MethodPost:
		switch path {
		case "/embed":
			return routeEmbed
		case "/embed_all":
			return routeEmbedAll
		case "/similarity":
			return routeSimilarity
		case "/tokenize":
			return routeTokenize
		case "/decode":
			return routeDecode
		case "/predict":
			return routePredict
		case "/v1/embeddings", "/embeddings":
			return routeOpenAI
		case "/generate":
			return routeGenerate
		case "/generate_stream":
			return routeGenStream
		case "/v1/completions", "/completions":
			return routeComplete
		case "/webhooks/hub":
			return routeWebhook
		case "/admin/reload":
			return routeReload
		}
		return routeAIC
	}
	return routeMethod
}

// reqState is what the middleware knows about one request.
type reqState struct {
	id    string
	start time.Time
	route *route
	err   *httpError // the error answered, for the log line
	// stats is what the pipeline reported for an inference request, for the log line.
	stats    pipelines.Stats
	hasStats bool
}

// observe records a pipeline call's costs in the metrics and the request's log line.
func (s *Server) observe(st *reqState, stats pipelines.Stats) {
	s.metrics.stats(stats)
	st.stats, st.hasStats = stats, true
}

func (s *Server) serveHTTP(rc *fasthttp.RequestCtx) {
	st := reqState{start: time.Now()}
	st.route = selectRoute(string(rc.Method()), string(rc.Path()))
	st.id = s.reqIDs.from(rc.Request.Header.Peek("x-request-id"))
	s.dispatch(rc, &st)
	if !rc.IsHead() {
		maybeGzip(rc)
	}
	s.finish(rc, &st)
}

// dispatch runs the handler and turns a panic into a 500 JSON answer: a bug in one request
// must not take the process down (fasthttp does not recover).
func (s *Server) dispatch(rc *fasthttp.RequestCtx, st *reqState) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "request_id", st.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			rc.Response.Reset()
			s.writeError(rc, st, &httpError{kind: kindInternal, msg: internalMsg(st.route.proto), cause: fmt.Errorf("panic: %v", p)})
		}
	}()
	st.route.handle(s, rc, st)
}

func internalMsg(p protocol) string {
	if p == protoAIC {
		return msgInternalAIC
	}
	return msgInternalTEI
}

func (s *Server) finish(rc *fasthttp.RequestCtx, st *reqState) {
	rc.Response.Header.Set("x-request-id", st.id)
	status := rc.Response.StatusCode()
	d := time.Since(st.start)
	s.metrics.request(st.route.name, status, d)
	level := slog.LevelInfo
	switch {
	case st.route == routeHealth || st.route == routeMetrics:
		level = slog.LevelDebug // probes and scrapes would drown the log
	case status >= 500:
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", string(rc.Method())),
		slog.String("path", string(rc.Path())),
		slog.String("route", st.route.name),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("request_id", st.id),
		slog.Int("bytes_in", len(rc.Request.Body())),
	}
	if st.hasStats {
		// Where the time went: the stages behind the x-*-time headers and the metrics.
		attrs = append(attrs,
			slog.Int("inputs", st.stats.Inputs),
			slog.Int("tokens", st.stats.Tokens),
			slog.Duration("tokenization", st.stats.Tokenize),
			slog.Duration("queue", st.stats.Queue),
			slog.Duration("inference", st.stats.Inference),
		)
	}
	if st.err != nil {
		attrs = append(attrs, slog.String("error_kind", kindTable[st.err.kind].name), slog.String("error", st.err.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "http request", attrs...)
}

// writeJSON answers status with body as application/json.
func writeJSON(rc *fasthttp.RequestCtx, status int, body []byte) {
	rc.SetStatusCode(status)
	rc.SetContentType("application/json")
	rc.SetBody(body)
}

// writeError answers e in the route's protocol.
func (s *Server) writeError(rc *fasthttp.RequestCtx, st *reqState, e *httpError) {
	st.err = e
	p := st.route.proto
	status := e.status(p)
	switch e.kind {
	case kindOverloaded, kindUnavailable:
		rc.Response.Header.Set("Retry-After", "1")
	case kindMethod:
		rc.Response.Header.Set("Allow", "GET, HEAD, POST")
	}
	b := s.getBuf()
	*b = e.appendBody(*b, p)
	writeJSON(rc, status, *b)
	s.putBuf(b)
}

// serveHTTPError answers requests fasthttp could not read (body over the limit, malformed
// HTTP, read timeout) with JSON in the shape of the route the path names.
func (s *Server) serveHTTPError(rc *fasthttp.RequestCtx, err error) {
	st := reqState{start: time.Now(), id: s.reqIDs.from(rc.Request.Header.Peek("x-request-id"))}
	st.route = selectRoute(string(rc.Method()), string(rc.Path()))
	var e *httpError
	var netErr net.Error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = errorf(kindTooLarge, "Payload too large: the request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	case errors.As(err, &small):
		e = newError(kindBadHTTP, "Request header too large")
	case errors.As(err, &netErr) && netErr.Timeout():
		e = newError(kindBadHTTP, "Request timeout")
		e.cause = err
	default:
		e = newError(kindBadHTTP, "Error when parsing request")
		e.cause = err
	}
	s.writeError(rc, &st, e)
	if errors.As(err, &netErr) && netErr.Timeout() {
		rc.SetStatusCode(fasthttp.StatusRequestTimeout)
	} else if small != nil {
		rc.SetStatusCode(fasthttp.StatusRequestHeaderFieldsTooLarge)
	}
	s.finish(rc, &st)
}

// handleOK is the aic catch-all GET: the container's liveness answer, even while the model
// loads or after it failed.
func (s *Server) handleOK(rc *fasthttp.RequestCtx, st *reqState) {
	writeJSON(rc, fasthttp.StatusOK, []byte(`{"ok":"ok"}`))
}

func (s *Server) handleMethodNotAllowed(rc *fasthttp.RequestCtx, st *reqState) {
	s.writeError(rc, st, newError(kindMethod, "Method Not Allowed"))
}

// handleHealth is TEI's /health: 200 with an empty body once a model is served, 503 while
// loading, after a failed load and while shutting down.
func (s *Server) handleHealth(rc *fasthttp.RequestCtx, st *reqState) {
	if s.holder.current() != nil && !s.isDraining() {
		rc.SetStatusCode(fasthttp.StatusOK)
		return
	}
	s.writeError(rc, st, newError(kindUnavailable, "unhealthy"))
	rc.Response.Header.Del("Retry-After")
}

// gzipMinSize is Starlette's GZipMiddleware minimum_size.
const gzipMinSize = 1000

// maybeGzip compresses bodies of gzipMinSize bytes or more for clients that accept gzip.
// BestSpeed: embeddings compress about 2x at any level, and CPU is what the server sells.
func maybeGzip(rc *fasthttp.RequestCtx) {
	if rc.Response.IsBodyStream() {
		return // server-sent events: reading Body() would drain the stream here
	}
	body := rc.Response.Body()
	if len(body) < gzipMinSize || len(rc.Response.Header.ContentEncoding()) > 0 {
		return
	}
	rc.Response.Header.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(string(rc.Request.Header.Peek("Accept-Encoding"))) {
		return
	}
	z := fasthttp.AppendGzipBytesLevel(nil, body, fasthttp.CompressBestSpeed)
	rc.Response.SetBodyRaw(z)
	rc.Response.Header.SetContentEncoding("gzip")
}

// acceptsGzip parses an Accept-Encoding value (RFC 9110 §12.5.3): gzip (or x-gzip) listed
// with a non-zero q, or "*" with a non-zero q while gzip is not refused. Starlette only
// looks for the substring "gzip"; we also honour q=0.
func acceptsGzip(h string) bool {
	star, gzip := -1.0, -1.0
	for part := range strings.SplitSeq(h, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 {
					f = 0
				}
				q = f
			}
		}
		switch name {
		case "gzip", "x-gzip":
			gzip = max(gzip, q)
		case "*":
			star = q
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}

// requestIDs makes ids: the client's x-request-id when it is sane, else a process-random
// prefix and a counter (cheap, unique, sortable within a process).
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return requestIDs{prefix: hex.EncodeToString(b[:])}
}

func (r *requestIDs) from(client []byte) string {
	if n := len(client); n > 0 && n <= 128 {
		ok := true
		for _, c := range client {
			if c <= ' ' || c >= 0x7f {
				ok = false
				break
			}
		}
		if ok {
			return string(client)
		}
	}
	return r.prefix + "-" + strconv.FormatUint(r.n.Add(1), 10)
}
