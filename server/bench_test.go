package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

// BenchmarkHandlers measures the HTTP layer alone (fake 384-dim model, in-memory
// connections): parsing, validation, encoding, middleware. Run with -benchmem.
func BenchmarkHandlers(b *testing.B) {
	m := st.NewModel("bench", "feature-extraction", 384)
	srv, err := server.New(server.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})),
		Load:   func(context.Context) (*pipelines.Model, error) { return m.Model, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Shutdown(context.Background())
	client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	for _, c := range []struct{ name, path, body string }{
		{"aic-feature-extraction", "/", `{"inputs":"The quick brown fox jumps over the lazy dog"}`},
		{"aic-batch8", "/", `{"inputs":["a b","c d","e f","g h","i j","k l","m n","o p"]}`},
		{"tei-embed", "/embed", `{"inputs":"The quick brown fox jumps over the lazy dog"}`},
		{"openai", "/v1/embeddings", `{"input":"The quick brown fox jumps over the lazy dog"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://bench" + c.path)
				req.Header.SetMethod(fasthttp.MethodPost)
				for pb.Next() {
					req.SetBodyString(c.body)
					if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("%v %d %s", err, resp.StatusCode(), resp.Body())
						return
					}
				}
			})
		})
	}
}
