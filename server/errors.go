package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
)

// Every failure the HTTP layer answers falls into one kind, and kindTable is the only place
// that maps kinds to statuses. Where the two protocols disagree the routes pick their column:
// api-inference-community (aic) routes answer like the Python containers, TEI and OpenAI
// routes like text-embeddings-inference.

type kind uint8

const (
	kindInternal     kind = iota // unclassified: an inference failure or a bug (detail logged only)
	kindInvalid                  // bad input: *pipelines.ValidationError, bad request fields
	kindEmpty                    // empty input: pipelines.ErrEmpty
	kindSyntax                   // TEI/OpenAI body is not JSON
	kindTooLarge                 // body over Config.MaxBodyBytes
	kindOverloaded               // sched.ErrOverloaded: admission refused, answered at once
	kindUnavailable              // sched.ErrClosed, model still loading, server shutting down
	kindLoadFailed               // Config.Load failed; every POST reports it
	kindUnsupported              // the model lacks what the route or task needs
	kindTimeout                  // Config.RequestTimeout elapsed
	kindCanceled                 // the client went away
	kindMethod                   // method not allowed
	kindBadHTTP                  // fasthttp could not parse the request
	kindUnauthorized             // webhook/admin secret missing
	kindForbidden                // webhook/admin secret wrong
	kindNotFound                 // route disabled by configuration
)

type kindSpec struct {
	name    string // metrics/log label
	aic     int    // status on api-inference-community routes
	tei     int    // status on TEI and OpenAI routes
	teiType string // TEI ErrorType, serialised as TEI does (PascalCase, no rename)
	tgi     int    // status on TGI routes (/generate, /generate_stream)
	tgiType string // TGI error_type (lower case)
}

var kindTable = [...]kindSpec{
	kindInternal:     {"internal", 500, 424, "Backend", 424, "generation"},
	kindInvalid:      {"validation", 400, 422, "Validation", 422, "validation"},
	kindEmpty:        {"empty", 400, 400, "Empty", 422, "validation"},
	kindSyntax:       {"syntax", 400, 400, "Validation", 400, "validation"},
	kindTooLarge:     {"too_large", 413, 413, "Validation", 413, "validation"},
	kindOverloaded:   {"overloaded", 429, 429, "Overloaded", 429, "overloaded"},
	kindUnavailable:  {"unavailable", 503, 503, "Unhealthy", 503, "unhealthy"},
	kindLoadFailed:   {"load_failed", 500, 500, "Unhealthy", 500, "unhealthy"},
	kindUnsupported:  {"unsupported", 500, 424, "Backend", 424, "generation"},
	kindTimeout:      {"timeout", 504, 504, "Backend", 504, "generation"},
	kindCanceled:     {"canceled", 499, 499, "Backend", 499, "generation"},
	kindMethod:       {"method", 405, 405, "Validation", 405, "validation"},
	kindBadHTTP:      {"bad_http", 400, 400, "Validation", 400, "validation"},
	kindUnauthorized: {"unauthorized", 401, 401, "Unauthorized", 401, "unauthorized"},
	kindForbidden:    {"forbidden", 403, 403, "Forbidden", 403, "forbidden"},
	kindNotFound:     {"not_found", 404, 404, "NotFound", 404, "not_found"},
}

// httpError is a failure ready to be answered.
type httpError struct {
	kind kind
	msg  string   // what the client sees
	list []string // aic schema errors: the body is {"error":[...]} (pydantic's shape)
	// pipeline marks messages that came from a pipeline's ValidationError: TEI prefixes
	// those with "Input validation error: ", as its core error type does.
	pipeline bool
	cause    error // logged, never sent
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", kindTable[e.kind].name, e.msg, e.cause)
	}
	return kindTable[e.kind].name + ": " + e.msg
}

func (e *httpError) Unwrap() error { return e.cause }

func newError(k kind, msg string) *httpError { return &httpError{kind: k, msg: msg} }

func errorf(k kind, format string, args ...any) *httpError {
	return &httpError{kind: k, msg: fmt.Sprintf(format, args...)}
}

// Causes attached to a request's context, so a context error can be told apart.
var (
	errClientGone     = errors.New("server: client disconnected")
	errShuttingDown   = errors.New("server: shutting down")
	errRequestTimeout = errors.New("server: request timeout")
)

// Public messages for kinds whose text does not come from the error.
const (
	msgOverloaded  = "Model is overloaded"
	msgInternalAIC = "unknown error"
	msgInternalTEI = "Backend error: inference failed"
	msgLoading     = "Model is still loading"
	msgShutdown    = "Server is shutting down"
	msgClosed      = "Model is not available"
	msgTimeout     = "Request timed out"
	msgCanceled    = "Client closed the request"
)

// classify turns any error from a pipeline or the holder into an httpError. ctx is the
// request's context: when it has ended, its cause decides the kind (the pipeline usually
// returns a wrapped context.Canceled either way).
func classify(ctx context.Context, err error, aic bool) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	if ctx != nil && ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errClientGone):
			return &httpError{kind: kindCanceled, msg: msgCanceled, cause: err}
		case errors.Is(cause, errShuttingDown):
			return &httpError{kind: kindUnavailable, msg: msgShutdown, cause: err}
		default:
			return &httpError{kind: kindTimeout, msg: msgTimeout, cause: err}
		}
	}
	var ve *pipelines.ValidationError
	switch {
	case errors.Is(err, sched.ErrOverloaded):
		return &httpError{kind: kindOverloaded, msg: msgOverloaded, cause: err}
	case errors.Is(err, sched.ErrClosed):
		return &httpError{kind: kindUnavailable, msg: msgClosed, cause: err}
	case errors.As(err, &ve):
		k := kindInvalid
		if errors.Is(err, pipelines.ErrEmpty) {
			k = kindEmpty
		}
		return &httpError{kind: k, msg: ve.Msg, pipeline: true, cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &httpError{kind: kindTimeout, msg: msgTimeout, cause: err}
	}
	msg := msgInternalTEI
	if aic {
		msg = msgInternalAIC
	}
	return &httpError{kind: kindInternal, msg: msg, cause: err}
}

// protocol selects the error body shape and status column.
type protocol uint8

const (
	protoAIC    protocol = iota // {"error": str | [str]}
	protoTEI                    // {"error": str, "error_type": str}
	protoOpenAI                 // {"message": str, "code": int, "type": str}
	protoTGI                    // {"error": str, "error_type": str}, TGI's lower-case types
)

func (e *httpError) status(p protocol) int {
	switch p {
	case protoAIC:
		return kindTable[e.kind].aic
	case protoTGI:
		return kindTable[e.kind].tgi
	}
	return kindTable[e.kind].tei
}

// appendBody writes the error body for protocol p.
func (e *httpError) appendBody(dst []byte, p protocol) []byte {
	msg := e.msg
	if p != protoAIC && e.pipeline {
		msg = "Input validation error: " + msg
	}
	switch p {
	case protoTEI, protoTGI:
		typ := kindTable[e.kind].teiType
		if p == protoTGI {
			typ = kindTable[e.kind].tgiType
		}
		dst = append(dst, `{"error":`...)
		dst = appendJSONString(dst, msg)
		dst = append(dst, `,"error_type":`...)
		dst = appendJSONString(dst, typ)
		return append(dst, '}')
	case protoOpenAI:
		dst = append(dst, `{"message":`...)
		dst = appendJSONString(dst, msg)
		dst = append(dst, `,"code":`...)
		dst = appendInt(dst, e.status(p))
		dst = append(dst, `,"type":`...)
		dst = appendJSONString(dst, kindTable[e.kind].teiType)
		return append(dst, '}')
	}
	dst = append(dst, `{"error":`...)
	if e.list != nil {
		dst = append(dst, '[')
		for i, s := range e.list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
	} else {
		dst = appendJSONString(dst, msg)
	}
	return append(dst, '}')
}
