package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// Config configures a Server. Zero values take the defaults listed.
type Config struct {
	// Task is the api-inference-community task served on POST / (env TASK). Empty: the
	// loaded model's Info.Task. An unknown task is not a configuration error: like the Python
	// containers the server starts and answers every aic POST with 400.
	Task string
	// ComputeType is the x-compute-type header value (env COMPUTE_TYPE; default "cpu").
	ComputeType string
	// MaxBodyBytes bounds request bodies; larger ones get 413 (default 2,000,000, TEI's
	// --payload-limit).
	MaxBodyBytes int
	// ReadTimeout bounds reading a request, WriteTimeout writing a response, IdleTimeout a
	// keep-alive connection's wait for its next request (defaults 30s, 30s, 120s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RequestTimeout bounds one request from its arrival to its response body, including
	// waiting for the model to load (default 60s). Its deadline reaches the pipeline.
	RequestTimeout time.Duration
	// MaxClientBatchSize bounds the inputs of one request (TEI --max-client-batch-size).
	// Zero: the model's Info.MaxClientBatchSize, else 32.
	MaxClientBatchSize int
	// Load loads the model. Serve calls it once in the background; until it returns, GET
	// /health answers 503 and POSTs wait. Load must warm the model up before returning. On
	// error every POST answers 500 with the error's text. Nil: only SetModel installs models.
	Load func(ctx context.Context) (*pipelines.Model, error)
	// Logger receives request logs and errors (default slog.Default()).
	Logger *slog.Logger
	// Registry receives the HTTP metrics and is served on /metrics. Nil: a private registry
	// with the Go and process collectors.
	Registry *prometheus.Registry
	// Version is reported by /info (default "dev").
	Version string
	// NoDisconnectCancel turns off cancelling a request's context when its client hangs up
	// (see disconnect_linux.go).
	NoDisconnectCancel bool
	// WebhookSecret guards POST /webhooks/hub and POST /admin/reload (env WEBHOOK_SECRET);
	// empty disables both routes.
	WebhookSecret string
	// Reloader produces replacement models for webhooks and /admin/reload; nil: the routes
	// accept nothing.
	Reloader Reloader
}

const (
	defaultMaxBody        = 2_000_000
	defaultReadTimeout    = 30 * time.Second
	defaultWriteTimeout   = 30 * time.Second
	defaultIdleTimeout    = 120 * time.Second
	defaultRequestTimeout = 60 * time.Second
	defaultClientBatch    = 32
)

func (c Config) withDefaults() (Config, error) {
	if c.MaxBodyBytes < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 ||
		c.RequestTimeout < 0 || c.MaxClientBatchSize < 0 {
		return c, errors.New("server: config: limits and timeouts must not be negative")
	}
	if strings.ContainsAny(c.ComputeType, "\r\n\x00") || strings.ContainsAny(c.Version, "\r\n\x00") {
		return c, errors.New("server: config: ComputeType and Version must be single-line")
	}
	if c.ComputeType == "" {
		c.ComputeType = "cpu"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c, nil
}

// Server serves one model over HTTP. Create it with New, run it with Serve, stop it with
// Shutdown.
type Server struct {
	cfg      Config
	log      *slog.Logger
	http     *fasthttp.Server
	holder   *holder
	metrics  *httpMetrics
	gatherer prometheus.Gatherer
	reqIDs   requestIDs

	// baseCtx parents every request context; Shutdown cancels it only when its own deadline
	// passes, to cut requests still running.
	baseCtx    context.Context
	baseCancel context.CancelCauseFunc

	loadCtx    context.Context
	loadCancel context.CancelCauseFunc
	loadOnce   sync.Once
	loadDone   chan struct{}

	draining chan struct{} // closed when Shutdown starts
	drainOne sync.Once
	bufs     sync.Pool // *[]byte response buffers

	reloads     *reloadMetrics
	reloadKick  chan struct{} // capacity 1: a queued reload
	reloadDone  chan struct{} // closed when the reload loop has exited
	reloadMu    sync.Mutex
	reloadForce bool
}

// New validates cfg and builds a Server. Nothing runs until Serve.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	rm, err := newReloadMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		holder:   newHolder(cfg.Logger, 30*time.Second),
		metrics:  m,
		gatherer: reg,
		reqIDs:   newRequestIDs(),
		loadDone: make(chan struct{}),
		draining: make(chan struct{}),

		reloads:    rm,
		reloadKick: make(chan struct{}, 1),
		reloadDone: make(chan struct{}),
	}
	s.baseCtx, s.baseCancel = context.WithCancelCause(context.Background())
	s.loadCtx, s.loadCancel = context.WithCancelCause(context.Background())
	s.http = &fasthttp.Server{
		Handler:              s.serveHTTP,
		ErrorHandler:         s.serveHTTPError,
		Name:                 "infergo",
		ReadTimeout:          cfg.ReadTimeout,
		WriteTimeout:         cfg.WriteTimeout,
		IdleTimeout:          cfg.IdleTimeout,
		MaxRequestBodySize:   cfg.MaxBodyBytes,
		NoDefaultContentType: true,
		Logger:               fasthttpLogger{cfg.Logger},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown, then returns nil. The first call starts
// Config.Load in the background, so the server answers while the model loads.
func (s *Server) Serve(ln net.Listener) error {
	if s.isDraining() {
		_ = ln.Close()
		return nil
	}
	s.startLoad()
	if err := s.http.Serve(ln); err != nil {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	return s.Serve(ln)
}

func (s *Server) startLoad() {
	s.loadOnce.Do(func() {
		if s.cfg.Reloader != nil {
			go s.reloadLoop()
		} else {
			close(s.reloadDone)
		}
		if s.cfg.Load == nil {
			close(s.loadDone)
			return
		}
		go s.load()
	})
}

func (s *Server) load() {
	defer close(s.loadDone)
	t0 := time.Now()
	s.log.Info("loading model")
	m, err := s.cfg.Load(s.loadCtx)
	switch {
	case err != nil:
		s.log.Error("model load failed", "err", err, "duration", time.Since(t0))
		s.holder.fail(err)
	case m == nil:
		err = errors.New("model loader returned no model")
		s.log.Error("model load failed", "err", err)
		s.holder.fail(err)
	default:
		if s.holder.set(m, true) {
			s.log.Info("model loaded", "model", m.Info.ModelID, "task", m.Info.Task, "duration", time.Since(t0))
		}
	}
}

// SetModel installs m as the served model and takes ownership of it. Requests that start
// afterwards use m; requests in flight finish on the previous model, which is closed once the
// last of them ends. A model passed here wins over a Load still running. After Shutdown, m is
// closed at once.
func (s *Server) SetModel(m *pipelines.Model) {
	if m == nil {
		return
	}
	if s.holder.set(m, false) {
		s.log.Info("model installed", "model", m.Info.ModelID, "task", m.Info.Task)
	}
}

// Shutdown stops the server gracefully: /health turns 503, listeners close, requests in
// flight finish, then the model is closed. If ctx ends first, requests still running are
// cancelled and Shutdown returns ctx's error once the model has been closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drainOne.Do(func() { close(s.draining) })
	// A load still running is abandoned, and requests waiting for it answer 503 at once, so
	// that they do not hold the drain up.
	s.loadCancel(errShuttingDown)
	s.holder.stop()
	var errs []error
	if err := s.http.ShutdownWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("server: shutdown http: %w", err))
	}
	// Nothing new arrives now; cut whatever still runs (only when ctx expired).
	s.baseCancel(errShuttingDown)
	s.loadOnce.Do(func() { close(s.loadDone); close(s.reloadDone) }) // never started: nothing to wait for
	for _, done := range []chan struct{}{s.loadDone, s.reloadDone} {
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("server: waiting for the model loader: %w", ctx.Err()))
		}
	}
	if err := s.holder.close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// maxClientBatch is the per-request input limit in force for model m.
func (s *Server) maxClientBatch(m *pipelines.Model) int {
	if s.cfg.MaxClientBatchSize > 0 {
		return s.cfg.MaxClientBatchSize
	}
	if m != nil && m.Info.MaxClientBatchSize > 0 {
		return m.Info.MaxClientBatchSize
	}
	return defaultClientBatch
}

// requestContext derives the context one request runs under: a real deadline (fasthttp's
// RequestCtx.Done fires only at server shutdown) and, where the connection allows it,
// cancellation when the client hangs up. The returned func must be called before the
// handler returns.
func (s *Server) requestContext(rc *fasthttp.RequestCtx) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	tctx, tcancel := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errRequestTimeout)
	stop := func() {}
	if !s.cfg.NoDisconnectCancel {
		stop = watchDisconnect(rc, cancel)
	}
	return tctx, func() {
		stop()
		tcancel()
		cancel(nil)
	}
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 16<<10)
	return &b
}

func (s *Server) putBuf(b *[]byte) {
	if cap(*b) <= 4<<20 { // do not pin huge buffers
		s.bufs.Put(b)
	}
}

// fasthttpLogger routes fasthttp's own messages (accept errors and the like) to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn("fasthttp: " + fmt.Sprintf(format, args...))
}
