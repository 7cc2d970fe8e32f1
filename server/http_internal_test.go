package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
)

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                      false,
		"gzip":                  true,
		"GZip":                  true,
		"gzip, deflate, br":     true,
		"deflate, br":           false,
		"br;q=1.0, gzip;q=0.8":  true,
		"gzip;q=0":              false,
		"gzip; q=0.0, *":        false,
		"*":                     true,
		"*;q=0":                 false,
		"x-gzip":                true,
		"identity":              false,
		"gzip;q=bogus":          false,
		" gzip ; q=0.001 ":      true,
		"deflate;q=0.5,gzip;q=": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	r := newRequestIDs()
	a, b := r.from(nil), r.from(nil)
	if a == b || !strings.HasPrefix(a, r.prefix+"-") {
		t.Errorf("generated ids %q %q", a, b)
	}
	if got := r.from([]byte("client-id_1")); got != "client-id_1" {
		t.Errorf("client id dropped: %q", got)
	}
	for _, bad := range []string{"has space", "new\nline", strings.Repeat("x", 129), "é"} {
		if got := r.from([]byte(bad)); got == bad {
			t.Errorf("unsafe id %q accepted", bad)
		}
	}
}

func TestSelectRoute(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         *route
	}{
		{"GET", "/", routeOK}, {"HEAD", "/x/y", routeOK}, {"GET", "/health", routeHealth},
		{"HEAD", "/health", routeHealth}, {"GET", "/info", routeInfo}, {"GET", "/metrics", routeMetrics},
		{"GET", "/embed", routeOK}, {"POST", "/", routeAIC}, {"POST", "/pipeline/x/y", routeAIC},
		{"POST", "/health", routeAIC}, {"POST", "/embed", routeEmbed}, {"POST", "/embed/", routeAIC},
		{"POST", "/embed_all", routeEmbedAll}, {"POST", "/similarity", routeSimilarity},
		{"POST", "/tokenize", routeTokenize}, {"POST", "/decode", routeDecode},
		{"POST", "/v1/embeddings", routeOpenAI}, {"POST", "/embeddings", routeOpenAI},
		{"PUT", "/", routeMethod}, {"DELETE", "/embed", routeMethod}, {"OPTIONS", "/", routeMethod},
	} {
		if got := selectRoute(c.method, c.path); got != c.want {
			t.Errorf("%s %s → %s, want %s", c.method, c.path, got.name, c.want.name)
		}
	}
}

// TestErrorTable pins the status table: one row per kind and protocol.
func TestErrorTable(t *testing.T) {
	cancelled := func(cause error) context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		return ctx
	}
	timedOut, cancel := context.WithTimeoutCause(context.Background(), -time.Second, errRequestTimeout)
	defer cancel()
	for _, c := range []struct {
		ctx      context.Context
		err      error
		aic, tei int
		teiType  string
		aicBody  string
	}{
		{nil, pipelines.Invalidf("x", "too long"), 400, 422, "Validation", `{"error":"too long"}`},
		{nil, fmt.Errorf("wrapped: %w", pipelines.EmptyError("x", "empty")), 400, 400, "Empty", `{"error":"empty"}`},
		{nil, fmt.Errorf("admit: %w", sched.ErrOverloaded), 429, 429, "Overloaded", `{"error":"Model is overloaded"}`},
		{nil, sched.ErrClosed, 503, 503, "Unhealthy", `{"error":"Model is not available"}`},
		{nil, errors.New("ort failed"), 500, 424, "Backend", `{"error":"unknown error"}`},
		{nil, context.DeadlineExceeded, 504, 504, "Backend", `{"error":"Request timed out"}`},
		{timedOut, context.DeadlineExceeded, 504, 504, "Backend", `{"error":"Request timed out"}`},
		{cancelled(errClientGone), context.Canceled, 499, 499, "Backend", `{"error":"Client closed the request"}`},
		{cancelled(errShuttingDown), context.Canceled, 503, 503, "Unhealthy", `{"error":"Server is shutting down"}`},
		{nil, &httpError{kind: kindLoadFailed, msg: "no weights"}, 500, 500, "Unhealthy", `{"error":"no weights"}`},
		{nil, newError(kindTooLarge, "big"), 413, 413, "Validation", `{"error":"big"}`},
		{nil, newError(kindUnsupported, "nope"), 500, 424, "Backend", `{"error":"nope"}`},
		{nil, newError(kindMethod, "Method Not Allowed"), 405, 405, "Validation", `{"error":"Method Not Allowed"}`},
	} {
		e := classify(c.ctx, c.err, true)
		if e.status(protoAIC) != c.aic || e.status(protoTEI) != c.tei || kindTable[e.kind].teiType != c.teiType {
			t.Errorf("%v: statuses %d/%d %s, want %d/%d %s", c.err, e.status(protoAIC), e.status(protoTEI),
				kindTable[e.kind].teiType, c.aic, c.tei, c.teiType)
		}
		if got := string(e.appendBody(nil, protoAIC)); got != c.aicBody {
			t.Errorf("%v: body %s, want %s", c.err, got, c.aicBody)
		}
	}
	for k, spec := range kindTable {
		if spec.name == "" || spec.aic == 0 || spec.tei == 0 || spec.teiType == "" {
			t.Errorf("kind %d has an incomplete row", k)
		}
	}
	e := classify(nil, pipelines.Invalidf("x", "too long"), false)
	if got := string(e.appendBody(nil, protoTEI)); got != `{"error":"Input validation error: too long","error_type":"Validation"}` {
		t.Errorf("TEI body %s", got)
	}
	if got := string(e.appendBody(nil, protoOpenAI)); got != `{"message":"Input validation error: too long","code":422,"type":"Validation"}` {
		t.Errorf("OpenAI body %s", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, bad := range []Config{{MaxBodyBytes: -1}, {RequestTimeout: -time.Second}, {ComputeType: "a\r\nb"}, {MaxClientBatchSize: -2}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	s, err := New(Config{Task: "not-a-task"}) // an unknown task is a runtime 400, not a config error
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.ComputeType != "cpu" || s.cfg.MaxBodyBytes != 2_000_000 || s.cfg.RequestTimeout != time.Minute || s.maxClientBatch(nil) != 32 {
		t.Errorf("defaults: %+v", s.cfg)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server never served: %v", err)
	}
}
