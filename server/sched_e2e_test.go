package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	rt "github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

// End-to-end tests of the scheduler behind the real HTTP server: the tiny BERT fixture on
// ONNX Runtime, with a session wrapper that can hold the model busy and records the shape
// of every batch that reached it.

// gatedSession runs the real session, but first records the batch shape and, while the
// gate is closed, waits (for the gate or the batch's context).
type gatedSession struct {
	rt.Session
	mu      sync.Mutex
	gate    chan struct{}
	shapes  [][2]int64
	entered chan struct{} // receives one value per Run that starts
}

func (g *gatedSession) Run(ctx context.Context, in, out []rt.Tensor) error {
	g.mu.Lock()
	g.shapes = append(g.shapes, [2]int64{in[0].Shape[0], in[0].Shape[1]})
	gate := g.gate
	g.mu.Unlock()
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Session.Run(ctx, in, out)
}

func (g *gatedSession) close() { g.mu.Lock(); close(g.gate); g.mu.Unlock() }
func (g *gatedSession) Shapes() [][2]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][2]int64(nil), g.shapes...)
}

type gatedOpener struct {
	rt.Opener
	sess *gatedSession
}

func (o *gatedOpener) Open(ctx context.Context, path string, opts rt.Options) (rt.Session, error) {
	s, err := o.Opener.Open(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	o.sess.Session = s
	return o.sess, nil
}

type countingObserver struct{ dropped, rejected, batches atomic.Int64 }

func (o *countingObserver) Rejected()                { o.rejected.Add(1) }
func (o *countingObserver) Queued(time.Duration)     {}
func (o *countingObserver) Dropped()                 { o.dropped.Add(1) }
func (o *countingObserver) Batch(b sched.BatchStats) { o.batches.Add(1) }

// startGated loads the tiny embedding model on one worker with its gate open (for the
// warm-up), then closes the gate and serves it.
func startGated(t *testing.T, cfg sched.Config, mutate func(*server.Config)) (*st.Instance, *pipelines.Model, *gatedSession, *countingObserver) {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(testutil.Fixture("tiny-bert-embeddings"))
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	close(open)
	gs := &gatedSession{gate: open, entered: make(chan struct{}, 64)}
	obs := &countingObserver{}
	cfg.Workers, cfg.Observer = 1, obs
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{
		Opener: &gatedOpener{Opener: env, sess: gs}, Runtime: rt.Options{IntraOpThreads: 1}, Sched: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	gs.mu.Lock()
	gs.gate, gs.shapes = make(chan struct{}), nil
	gs.mu.Unlock()
	for len(gs.entered) > 0 {
		<-gs.entered
	}
	sc := server.Config{Load: func(context.Context) (*pipelines.Model, error) { return m, nil }}
	if mutate != nil {
		mutate(&sc)
	}
	in := st.Start(t, sc)
	waitHealthy(t, in.URL)
	return in, m, gs, obs
}

// words returns a text of n distinct words, so its token length is known and unique.
func words(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = "word"
	}
	return strings.Join(w, " ")
}

// TestHTTPOverload429: with the model held busy, 6 concurrent requests meet a limit of 3:
// exactly 3 are admitted and 3 are answered 429 at once (while the model is still held, so
// never by a timeout), with Retry-After and a JSON error in each protocol's shape; the
// admitted ones all succeed once the model frees up.
func TestHTTPOverload429(t *testing.T) {
	in, _, gs, obs := startGated(t, sched.Config{MaxConcurrentRequests: 3}, nil)
	type answer struct {
		r    *st.Response
		took time.Duration
	}
	answers := make(chan answer, 8)
	send := func(path, body string) {
		start := time.Now()
		r, err := st.DoErr(http.MethodPost, in.URL+path, []byte(body))
		if err != nil {
			t.Error(err)
			r = &st.Response{}
		}
		answers <- answer{r, time.Since(start)}
	}
	for i := 0; i < 5; i++ {
		go send("/embed", `{"inputs":"hello there"}`)
	}
	go send("/", `{"inputs":"hello there"}`)
	var ok, rejected int
	deadline := time.After(10 * time.Second)
	for rejected < 3 {
		select {
		case a := <-answers:
			if a.r.Status != http.StatusTooManyRequests {
				t.Fatalf("answered %d %s while the model was held", a.r.Status, a.r.Body)
			}
			rejected++
			if a.took > time.Second {
				t.Errorf("429 took %v", a.took)
			}
			if got := a.r.Header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After %q", got)
			}
			if ct := a.r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("429 content type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(a.r.Body, &body); err != nil || body["error"] == nil {
				t.Errorf("429 body %s: %v", a.r.Body, err)
			}
			if et, has := body["error_type"]; has && et != "Overloaded" {
				t.Errorf("429 error_type %v", et)
			}
		case <-deadline:
			t.Fatalf("only %d rejections while the model was held", rejected)
		}
	}
	if n := len(gs.Shapes()); n != 1 {
		t.Errorf("%d batches reached the model while it was held, want 1", n)
	}
	gs.close()
	for ok+rejected < 6 {
		a := <-answers
		if a.r.Status != http.StatusOK {
			t.Errorf("admitted request answered %d %s", a.r.Status, a.r.Body)
		}
		ok++
	}
	if ok != 3 || obs.rejected.Load() != 3 {
		t.Errorf("%d succeeded, scheduler counted %d rejections; want 3 and 3", ok, obs.rejected.Load())
	}
}

// TestHTTPCancelledNeverReachModel: while the model is busy, one queued request's client
// hangs up and another's deadline passes; the scheduler drops both before they reach the
// model, and the requests after them are served.
func TestHTTPCancelledNeverReachModel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("disconnect detection is Linux-only")
	}
	in, m, gs, obs := startGated(t, sched.Config{}, func(c *server.Config) { c.RequestTimeout = 400 * time.Millisecond })
	ctx := context.Background()
	tokens := func(text string) int64 {
		toks, err := m.Tokenizer.Tokenize(ctx, []string{text}, true)
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(toks[0]))
	}
	gone, late := words(20), words(30)
	goneLen, lateLen := tokens(gone), tokens(late)

	blocker := make(chan error, 1)
	go func() { _, _, err := m.Embedder.Embed(ctx, []string{"hi"}, pipelines.EmbedOptions{}); blocker <- err }()
	<-gs.entered

	// The client that hangs up: a raw connection closed once its request is queued.
	c, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"inputs":%q}`, gone)
	fmt.Fprintf(c, "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	time.Sleep(150 * time.Millisecond)
	c.Close()

	// The request whose deadline (the server's 400 ms request timeout) passes in the queue.
	r := st.Post(t, in.URL+"/embed", fmt.Sprintf(`{"inputs":%q}`, late))
	if r.Status != http.StatusGatewayTimeout {
		t.Errorf("timed-out request answered %d %s", r.Status, r.Body)
	}

	gs.close()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	if r := st.Post(t, in.URL+"/embed", `{"inputs":"ok"}`); r.Status != http.StatusOK {
		t.Fatalf("request after the drops answered %d %s", r.Status, r.Body)
	}
	for _, sh := range gs.Shapes() {
		if sh[1] == goneLen || sh[1] == lateLen {
			t.Errorf("a batch of shape %v reached the model: a cancelled request was not dropped", sh)
		}
	}
	if d := obs.dropped.Load(); d != 2 {
		t.Errorf("scheduler dropped %d sequences, want 2", d)
	}
}
