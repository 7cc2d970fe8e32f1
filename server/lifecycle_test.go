package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

const unhealthy = `{"error":"unhealthy","error_type":"Unhealthy"}`

func TestModelLoading(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	release := make(chan struct{})
	in := st.Start(t, server.Config{Task: "feature-extraction", Load: func(ctx context.Context) (*pipelines.Model, error) {
		<-release
		return m.Model, nil
	}})
	// While loading: GET / answers, /health and /info are 503, POSTs wait.
	expectJSON(t, st.Get(t, in.URL+"/"), 200, `{"ok":"ok"}`)
	expectJSON(t, st.Get(t, in.URL+"/health"), 503, unhealthy)
	expectJSON(t, st.Get(t, in.URL+"/info"), 503, `{"error":"Model is still loading","error_type":"Unhealthy"}`)
	got := make(chan *st.Response, 2)
	for _, p := range []string{"/", "/embed"} {
		go func() {
			body := `"x"`
			if p == "/embed" {
				body = `{"inputs":"x"}`
			}
			r, err := st.DoErr(http.MethodPost, in.URL+p, []byte(body))
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
	}
	select {
	case r := <-got:
		t.Fatalf("POST answered while loading: %d %s", r.Status, r.Body)
	case <-time.After(150 * time.Millisecond):
	}
	close(release)
	for range 2 {
		if r := <-got; r == nil || r.Status != 200 {
			t.Fatalf("POST after load: %+v", r)
		}
	}
	waitHealthy(t, in.URL)
}

func TestModelLoadingTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	in := st.Start(t, server.Config{Task: "feature-extraction", RequestTimeout: 150 * time.Millisecond,
		Load: func(ctx context.Context) (*pipelines.Model, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, errors.New("cancelled")
		}})
	t0 := time.Now()
	r := st.Post(t, in.URL, `"x"`)
	expectJSON(t, r, 503, `{"error":"Model is still loading"}`)
	if d := time.Since(t0); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("waited %v for a 150ms request timeout", d)
	}
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"x"}`), 503, `{"error":"Model is still loading","error_type":"Unhealthy"}`)
}

func TestModelLoadFailure(t *testing.T) {
	in := st.Start(t, server.Config{Task: "feature-extraction", Load: func(context.Context) (*pipelines.Model, error) {
		return nil, errors.New("We cannot load the pipeline")
	}})
	deadline := time.Now().Add(5 * time.Second)
	var r *st.Response
	for time.Now().Before(deadline) {
		if r = st.Post(t, in.URL, `"x"`); r.Status != 503 {
			break
		}
	}
	expectJSON(t, r, 500, `{"error":"We cannot load the pipeline"}`) // aic test_invalid_pipeline
	checkNoComputeHeaders(t, r)
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"x"}`), 500, `{"error":"We cannot load the pipeline","error_type":"Unhealthy"}`)
	expectJSON(t, st.Post(t, in.URL+"/v1/embeddings", `{"input":"x"}`), 500, `{"message":"We cannot load the pipeline","code":500,"type":"Unhealthy"}`)
	expectJSON(t, st.Get(t, in.URL+"/"), 200, `{"ok":"ok"}`)
	expectJSON(t, st.Get(t, in.URL+"/health"), 503, unhealthy)
	expectJSON(t, st.Get(t, in.URL+"/info"), 503, `{"error":"We cannot load the pipeline","error_type":"Unhealthy"}`)
	// A model set later (e.g. by a reload) recovers the server.
	m := st.NewModel("m", "feature-extraction", dim)
	in.SetModel(m.Model)
	waitHealthy(t, in.URL)
	if r := st.Post(t, in.URL, `"x"`); r.Status != 200 {
		t.Errorf("after SetModel: %d %s", r.Status, r.Body)
	}
}

// gate blocks fake pipeline calls until released and reports when one has entered.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	ctxErr  atomic.Value // the error the call's ctx ended with, if it ended
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hook(ctx context.Context, _ string, _ []string) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		g.ctxErr.Store(context.Cause(ctx))
		return fmt.Errorf("fake: %w", ctx.Err())
	}
}

func TestGracefulShutdownWithRequestInFlight(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	g := newGate()
	m.Embedder.Hook = g.hook
	in := startWith(t, "feature-extraction", m)
	got := make(chan *st.Response, 1)
	go func() {
		r, err := st.DoErr(http.MethodPost, in.URL, []byte(`"x"`))
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	<-g.entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- in.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	default:
	}
	if m.Closed() != 0 {
		t.Fatal("model closed while a request was using it")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(in.URL, "http://"), time.Second); err == nil {
		t.Error("still accepting connections during shutdown")
	}
	close(g.release)
	if r := <-got; r == nil || r.Status != 200 {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if m.Closed() != 1 {
		t.Fatalf("model closed %d times", m.Closed())
	}
}

func TestShutdownDeadlineCancelsRequests(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	g := newGate() // never released: only cancellation ends the call
	m.Embedder.Hook = g.hook
	in := startWith(t, "feature-extraction", m, func(c *server.Config) { c.NoDisconnectCancel = true })
	got := make(chan *st.Response, 1)
	go func() {
		r, _ := st.DoErr(http.MethodPost, in.URL, []byte(`"x"`))
		got <- r
	}()
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	select {
	case r := <-got:
		if r != nil && r.Status != 503 {
			t.Errorf("cut request answered %d %s", r.Status, r.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cut request never ended")
	}
	if err, _ := g.ctxErr.Load().(error); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("pipeline ctx cause: %v", err)
	}
}

func TestRequestTimeoutReachesPipeline(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	var deadline atomic.Bool
	m.Embedder.Hook = func(ctx context.Context, _ string, _ []string) error {
		_, ok := ctx.Deadline()
		deadline.Store(ok)
		<-ctx.Done()
		return ctx.Err()
	}
	in := startWith(t, "feature-extraction", m, func(c *server.Config) { c.RequestTimeout = 100 * time.Millisecond })
	r := st.Post(t, in.URL, `"x"`)
	expectJSON(t, r, 504, `{"error":"Request timed out"}`)
	checkComputeHeaders(t, r, "cpu")
	expectJSON(t, st.Post(t, in.URL+"/embed", `{"inputs":"x"}`), 504, `{"error":"Request timed out","error_type":"Backend"}`)
	if !deadline.Load() {
		t.Error("the pipeline's context had no deadline")
	}
}

func TestClientDisconnectCancelsRequest(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("disconnect detection is Linux-only")
	}
	m := st.NewModel("m", "feature-extraction", dim)
	g := newGate()
	m.Embedder.Hook = g.hook
	in := startWith(t, "feature-extraction", m)
	c, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\"x\"")
	<-g.entered
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for g.ctxErr.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err, _ := g.ctxErr.Load().(error); err == nil || !strings.Contains(err.Error(), "client disconnected") {
		t.Fatalf("pipeline context not cancelled by the disconnect: %v", err)
	}
}

func TestPipelinedRequestsAreNotCancelled(t *testing.T) {
	m := st.NewModel("m", "feature-extraction", dim)
	var first atomic.Bool
	m.Embedder.Hook = func(ctx context.Context, _ string, _ []string) error {
		if first.CompareAndSwap(false, true) {
			select { // the second request's bytes arrive while this one runs
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	in := startWith(t, "feature-extraction", m)
	c, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\"x\""
	fmt.Fprint(c, req)
	time.Sleep(50 * time.Millisecond)
	fmt.Fprint(c, req)
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("response %d: %d", i, resp.StatusCode)
		}
	}
}

// TestHotSwapUnderLoad swaps models while clients hammer every inference route: no request
// may fail, and each replaced model is closed exactly once, only after its last request.
func TestHotSwapUnderLoad(t *testing.T) {
	const swaps = 20
	models := make([]*st.Model, swaps+1)
	inflight := make([]atomic.Int64, swaps+1)
	var closedEarly atomic.Int64
	for i := range models {
		m := st.NewModel(fmt.Sprintf("m%d", i), "feature-extraction", dim)
		m.Embedder.Hook = func(context.Context, string, []string) error {
			inflight[i].Add(1)
			defer inflight[i].Add(-1)
			if m.Closed() > 0 {
				closedEarly.Add(1)
			}
			time.Sleep(time.Duration(i%3) * time.Millisecond)
			return nil
		}
		models[i] = m
	}
	in := startWith(t, "feature-extraction", models[0])
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	routes := [][2]string{{"/", `["a","b"]`}, {"/embed", `{"inputs":"a"}`}, {"/v1/embeddings", `{"input":"a"}`}, {"/similarity", `{"inputs":{"source_sentence":"a","sentences":["b"]}}`}}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rt := routes[(w+i)%len(routes)]
				r, err := st.DoErr(http.MethodPost, in.URL+rt[0], []byte(rt[1]))
				total.Add(1)
				if err != nil || r.Status != 200 {
					failures.Add(1)
					if err == nil {
						t.Errorf("%s: %d %s", rt[0], r.Status, r.Body)
					} else {
						t.Error(err)
					}
				}
			}
		}()
	}
	for i := 1; i <= swaps; i++ {
		time.Sleep(15 * time.Millisecond)
		in.SetModel(models[i].Model)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() > 0 || total.Load() < 50 {
		t.Fatalf("%d of %d requests failed", failures.Load(), total.Load())
	}
	if closedEarly.Load() > 0 {
		t.Errorf("%d calls ran on a closed model", closedEarly.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < swaps; i++ {
		for models[i].Closed() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if models[i].Closed() != 1 || inflight[i].Load() != 0 {
			t.Errorf("model %d: closed %d times, %d calls in flight", i, models[i].Closed(), inflight[i].Load())
		}
	}
	if models[swaps].Closed() != 0 {
		t.Error("the current model was closed")
	}
	t.Logf("%d requests across %d swaps", total.Load(), swaps)
}
