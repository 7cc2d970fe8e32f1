package servertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/infergo/infergo/server"
)

// Instance is a running server.
type Instance struct {
	*server.Server
	URL    string // http://127.0.0.1:port
	served chan error
}

// Start builds a server from cfg, serves it on a random loopback port and shuts it down
// (gracefully, 10s) when the test ends. Without cfg.Logger, logs are discarded.
func Start(t testing.TB, cfg server.Config) *Instance {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	in := &Instance{Server: srv, URL: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { in.served <- srv.Serve(ln) }()
	t.Cleanup(func() { in.Stop(t, 10*time.Second) })
	return in
}

// Stop shuts the server down within timeout and checks that Serve returned cleanly. Calling
// it again is harmless.
func (in *Instance) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err, ok := <-in.served:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		if ok {
			close(in.served)
		}
	case <-ctx.Done():
		t.Errorf("Serve did not return after Shutdown")
	}
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client sends requests without transparent decompression, so tests see what the server
// wrote (gzip included).
var Client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
}

// Do sends method url with body (nil for none) and headers given as name, value pairs.
func Do(t testing.TB, method, url string, body []byte, headers ...string) *Response {
	t.Helper()
	r, err := DoErr(method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// DoErr is Do returning the error, for use off the test goroutine.
func DoErr(method, url string, body []byte, headers ...string) (*Response, error) {
	if len(headers)%2 != 0 {
		return nil, errors.New("servertest: headers must be name, value pairs")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Post sends a POST with body.
func Post(t testing.TB, url, body string, headers ...string) *Response {
	t.Helper()
	return Do(t, http.MethodPost, url, []byte(body), headers...)
}

// Get sends a GET.
func Get(t testing.TB, url string, headers ...string) *Response {
	t.Helper()
	return Do(t, http.MethodGet, url, nil, headers...)
}
