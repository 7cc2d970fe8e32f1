package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergo/infergo/bench/load"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
)

// ModelConfig is how Infergo loads the benchmark model: the settings behind `infergo serve`'s
// --workers, --threads, --max-batch-size, --max-batch-tokens and --max-queue-delay.
type ModelConfig struct {
	Dir     string
	Opener  runtime.Opener
	Workers int // default 2
	Threads int // intra-op threads per session (default 1)
	// Sessions defaults to 1 with one thread (workers share it), else one per worker, as
	// `infergo serve` does; runtime.SessionsPerWorker gives one per worker.
	Sessions int
	// SoloThreads is the solo session's thread count (see `infergo serve --solo-threads`):
	// 0 = serve's default (a thread per CPU when the workers have fewer), 1 = no solo session.
	SoloThreads int
	// Sched overrides the scheduler settings (zero fields keep Infergo's defaults).
	Sched sched.Config
	// Runtime overrides the session options; IntraOpThreads and InterOpThreads are set from
	// Threads.
	Runtime runtime.Options
}

// Load opens the model as `infergo serve` would.
func (c ModelConfig) Load(ctx context.Context) (*pipelines.Model, error) {
	repo, err := models.OpenDir(c.Dir)
	if err != nil {
		return nil, err
	}
	workers := c.Workers
	if workers <= 0 {
		workers = 2
	}
	threads := max(c.Threads, 1)
	sessions := c.Sessions
	if sessions == 0 {
		sessions = 1
		if threads > 1 {
			sessions = workers
		}
	}
	solo := c.SoloThreads
	if solo <= 0 {
		solo = runtime.DefaultSoloThreads(threads)
	}
	rt := c.Runtime
	rt.IntraOpThreads, rt.InterOpThreads = threads, 1
	sc := c.Sched
	sc.Workers = workers
	return pipelines.Load(ctx, repo, pipelines.LoadOptions{
		Opener:      c.Opener,
		Runtime:     rt,
		Sessions:    sessions,
		SoloThreads: solo,
		Sched:       sc,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// InProcessConfig drives the embeddings pipeline directly, Callers goroutines each sending
// one request of Batch texts at a time (a closed loop without HTTP).
type InProcessConfig struct {
	Callers int // default 32
	Batch   int // texts per request (default 1)
	Passes  int // timed passes after the warm-up pass (default 3)
}

// InProcessRunner drives a model's Embedder directly.
type InProcessRunner struct {
	emb     pipelines.Embedder
	reqs    [][]string
	callers int
}

// NewInProcessRunner prepares the requests of c for m.
func NewInProcessRunner(m *pipelines.Model, cfg InProcessConfig, c *Corpus) (*InProcessRunner, error) {
	if m.Embedder == nil {
		return nil, errors.New("harness: the model is not an embedding model")
	}
	batch := max(cfg.Batch, 1)
	r := &InProcessRunner{emb: m.Embedder, callers: max(cfg.Callers, 1)}
	for i := 0; i < len(c.Texts); i += batch {
		r.reqs = append(r.reqs, c.Texts[i:min(i+batch, len(c.Texts))])
	}
	return r, nil
}

// Pass implements Runner.
func (r *InProcessRunner) Pass(ctx context.Context) (Pass, error) {
	return inProcessPass(ctx, r.emb, r.reqs, r.callers)
}

// Close implements Runner; the model belongs to the caller.
func (r *InProcessRunner) Close() error { return nil }

// RunInProcess runs a warm-up pass and cfg.Passes timed passes over c through m.
func RunInProcess(ctx context.Context, m *pipelines.Model, cfg InProcessConfig, c *Corpus) ([]Pass, error) {
	r, err := NewInProcessRunner(m, cfg, c)
	if err != nil {
		return nil, err
	}
	return Passes(ctx, r, cfg.Passes)
}

func inProcessPass(ctx context.Context, emb pipelines.Embedder, reqs [][]string, callers int) (Pass, error) {
	var next atomic.Int64
	lat := make([]time.Duration, len(reqs))
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	seqs := 0
	for _, r := range reqs {
		seqs += len(r)
	}
	opts := pipelines.EmbedOptions{Truncate: true}
	start := time.Now()
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				t := time.Now()
				if _, _, err := emb.Embed(ctx, reqs[i], opts); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("harness: embed request %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Pass{}, firstErr
	}
	sortDurations(lat)
	return Pass{Seqs: seqs, Elapsed: elapsed, Latencies: lat}, nil
}

// Server is an Infergo HTTP server on a loopback port, serving one model.
type Server struct {
	URL   string
	srv   *server.Server
	model *pipelines.Model
	done  chan error
}

// StartServer serves m (the server takes ownership) on 127.0.0.1 with a fresh metrics
// registry, and returns once /health would answer 200.
func StartServer(m *pipelines.Model) (*Server, error) {
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		m.Close(context.Background())
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		m.Close(context.Background())
		return nil, fmt.Errorf("harness: listen: %w", err)
	}
	srv.SetModel(m)
	s := &Server{URL: "http://" + ln.Addr().String(), srv: srv, model: m, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ln) }()
	return s, nil
}

// Close shuts the server down and closes its model.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}

// HTTPConfig drives a server with bench/load's closed loop; each pass sends every text of
// the corpus once.
type HTTPConfig struct {
	Clients int // default 32
	Batch   int // texts per request (default 1)
	Passes  int // timed passes after the warm-up pass (default 3)
	Route   load.Route
}

// HTTPRunner drives a server with bench/load's closed loop, every text once per pass.
type HTTPRunner struct {
	url   string
	cfg   HTTPConfig
	texts []string
}

// NewHTTPRunner prepares passes over c against the server at url.
func NewHTTPRunner(url string, cfg HTTPConfig, c *Corpus) *HTTPRunner {
	cfg.Clients, cfg.Batch = max(cfg.Clients, 1), max(cfg.Batch, 1)
	return &HTTPRunner{url: url, cfg: cfg, texts: c.Texts}
}

// Pass implements Runner.
func (r *HTTPRunner) Pass(ctx context.Context) (Pass, error) {
	requests := (len(r.texts) + r.cfg.Batch - 1) / r.cfg.Batch
	res, err := load.Run(ctx, load.Config{
		URL: r.url, Route: r.cfg.Route, Texts: r.texts, Batch: r.cfg.Batch,
		Concurrency: r.cfg.Clients, Requests: requests,
	})
	if err != nil {
		return Pass{}, err
	}
	if res.OK() != requests {
		return Pass{}, fmt.Errorf("harness: http pass: %d of %d requests answered 200:\n%s", res.OK(), requests, res.Report())
	}
	return Pass{Seqs: res.Sequences, Elapsed: res.Elapsed, Latencies: res.Latencies}, nil
}

// Close implements Runner; the server belongs to the caller.
func (r *HTTPRunner) Close() error { return nil }

// RunHTTP runs a warm-up pass and cfg.Passes timed passes over c against the server at url.
func RunHTTP(ctx context.Context, url string, cfg HTTPConfig, c *Corpus) ([]Pass, error) {
	return Passes(ctx, NewHTTPRunner(url, cfg, c), cfg.Passes)
}

// BatchCounter is a sched.Observer that sums what the scheduler did, so a report can show
// batch sizes and padding next to throughput.
type BatchCounter struct {
	mu                                     sync.Mutex
	batches, seqs, tokens, padded, dropped int64
	rejected, solo                         int64
	busy, prepare, finish, idle            time.Duration
}

var _ sched.Observer = (*BatchCounter)(nil)

// Rejected implements sched.Observer.
func (b *BatchCounter) Rejected() { b.mu.Lock(); b.rejected++; b.mu.Unlock() }

// Queued implements sched.Observer.
func (b *BatchCounter) Queued(time.Duration) {}

// Dropped implements sched.Observer.
func (b *BatchCounter) Dropped() { b.mu.Lock(); b.dropped++; b.mu.Unlock() }

// Batch implements sched.Observer.
func (b *BatchCounter) Batch(s sched.BatchStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	b.seqs += int64(s.Size)
	b.tokens += int64(s.Tokens)
	b.padded += int64(s.PaddedTokens)
	b.busy += s.Inference
	b.prepare += s.Prepare
	b.finish += s.Finish
	b.idle += s.Dispatch
	if s.Solo {
		b.solo++
	}
}

// Reset zeroes the counters.
func (b *BatchCounter) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches, b.seqs, b.tokens, b.padded, b.dropped, b.rejected, b.solo = 0, 0, 0, 0, 0, 0, 0
	b.busy, b.prepare, b.finish, b.idle = 0, 0, 0, 0
}

// String summarises the counters: batches, mean batch size, padding share, mean run time,
// and per batch the worker's mean time before and after Run and the mean dispatch wait.
func (b *BatchCounter) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batches == 0 {
		return "no batches"
	}
	pad := 0.0
	if b.padded > 0 {
		pad = 100 * (1 - float64(b.tokens)/float64(b.padded))
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(b.batches) / 1e6 }
	s := fmt.Sprintf("%d batches, mean size %.1f, padding %.1f%%, mean run %.2f ms, prepare %.3f ms, finish %.3f ms, dispatch %.3f ms",
		b.batches, float64(b.seqs)/float64(b.batches), pad, per(b.busy), per(b.prepare), per(b.finish), per(b.idle))
	if b.solo > 0 {
		s += fmt.Sprintf(", solo %d", b.solo)
	}
	return s
}
