package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/infergo/infergo/pipelines"
	rt "github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server"
)

// ModelFlags choose the model and how it runs; serve and the commands that load a model
// locally share them.
type ModelFlags struct {
	Model       string `env:"MODEL_ID" help:"Model to serve: a Hub id (org/name, downloaded into the cache on first start) or a local directory laid out like a Hub repo. Empty: the built-in tiny embedding model."`
	Revision    string `env:"REVISION" help:"Hub revision: branch, tag or commit (default main)."`
	HubFlags    `embed:""`
	Task        string `env:"TASK" help:"Pipeline tag to serve (feature-extraction, sentence-similarity, …). Empty: inferred from the repo."`
	ONNXFile    string `name:"onnx-file" env:"INFERGO_ONNX_FILE" help:"ONNX graph in the repo (path, or a variant such as 'quantized')."`
	ORTLib      string `name:"ort-lib" env:"INFERGO_ORT_LIB" help:"Path of libonnxruntime.so (default: .deps/ from 'make deps', else the system library)."`
	Device      string `default:"cpu" env:"INFERGO_DEVICE" help:"Where to run: cpu, cuda, cuda:N or auto (CUDA when usable, else the CPU with a warning)."`
	DeviceFlags `embed:""`

	Workers           int    `env:"INFERGO_WORKERS" help:"Batches run at once (default: the number of CPUs)."`
	Threads           int    `default:"1" env:"INFERGO_THREADS" help:"Intra-op threads per batch. On CPU, more workers with one thread each beat fewer with several."`
	SoloThreads       int    `env:"INFERGO_SOLO_THREADS" help:"Intra-op threads of one more session that runs a batch when it is the only work, so that a lone request uses every core (default: the number of CPUs on the CPU, off on CUDA; 1: off)."`
	Sessions          int    `env:"INFERGO_SESSIONS" help:"Engine sessions the workers share (default 1, or one per worker with --threads above 1). On the CPU a session per worker runs 8-16% faster but each session's memory arena grows to its own largest batch; -1: one per worker, as many as a quarter of the memory holds."`
	GraphOptimization string `default:"all" enum:"disabled,basic,extended,all" env:"INFERGO_GRAPH_OPTIMIZATION" help:"ONNX Runtime graph optimisation level (${enum})."`

	MaxBatchTokens        int           `default:"8192" env:"MAX_BATCH_TOKENS" help:"Padded tokens (longest × count) per batch."`
	MaxBatchSize          int           `default:"128" env:"MAX_BATCH_REQUESTS" help:"Sequences per batch."`
	MaxQueueDelay         time.Duration `default:"1ms" env:"MAX_QUEUE_DELAY" help:"Longest a batch waits for requests that are still being tokenized."`
	MaxConcurrentRequests int           `default:"512" env:"MAX_CONCURRENT_REQUESTS" help:"Requests admitted at once; beyond it the answer is 429 at once."`
	MaxClientBatchSize    int           `default:"32" env:"MAX_CLIENT_BATCH_SIZE" help:"Inputs one request may carry."`
	BatchOverheadTokens   int           `default:"0" env:"BATCH_OVERHEAD_TOKENS" help:"Fixed cost of one model run, in padded tokens: queued inputs are split into batches of similar length when that saves more padding than the extra runs cost (0: 8 on the CPU, never split on CUDA, where a run's fixed cost is worth about a thousand tokens; -1: never split)."`
	MaxBatchTotalTokens   int           `env:"MAX_BATCH_TOTAL_TOKENS" help:"Text generation: KV-cache positions (prompt + new tokens, summed over the sequences of one decode loop) reserved at once. Default: 1 GiB worth of cache."`
	MaxBatchPrefillTokens int           `default:"4096" env:"MAX_BATCH_PREFILL_TOKENS" help:"Text generation: prompt tokens that join a running batch in one prefill."`
}

// ServeCmd runs the HTTP server.
type ServeCmd struct {
	ModelFlags `embed:""`

	Addr            string        `env:"INFERGO_ADDR" help:"Listen address host:port (default :$PORT, else :8000)."`
	WebhookSecret   string        `env:"WEBHOOK_SECRET" help:"Secret for POST /webhooks/hub and POST /admin/reload (X-Webhook-Secret); empty disables both."`
	HumanFirst      string        `name:"humanfirst-credentials" type:"existingfile" env:"HUMANFIRST_CREDENTIALS" help:"mtls-credentials.json: also serve HumanFirst's custom-integration gRPC services over mutual TLS."`
	GRPCAddr        string        `name:"grpc-addr" default:":8443" env:"GRPC_ADDR" help:"Listen address of the HumanFirst gRPC services."`
	DataDir         string        `name:"data-dir" type:"path" env:"INFERGO_DATA_DIR" help:"Where trained classifiers and workspaces are kept (default: $XDG_DATA_HOME/infergo or ~/.local/share/infergo)."`
	Port            int           `env:"PORT" hidden:"" help:"Port to listen on when --addr is not set."`
	ComputeType     string        `env:"COMPUTE_TYPE" help:"Value of the x-compute-type header (default: cpu, or gpu on CUDA)."`
	PayloadLimit    int           `default:"2000000" env:"PAYLOAD_LIMIT" help:"Largest request body in bytes (413 beyond)."`
	RequestTimeout  time.Duration `default:"60s" env:"REQUEST_TIMEOUT" help:"Longest a request may take, model loading included."`
	ShutdownTimeout time.Duration `default:"30s" help:"On SIGTERM, how long in-flight requests may take to finish."`
}

// Run implements the command.
func (c *ServeCmd) Run(log *slog.Logger) error {
	addr := c.Addr
	if addr == "" {
		port := 8000
		if c.Port > 0 {
			port = c.Port
		}
		addr = ":" + strconv.Itoa(port)
	}
	eng, err := c.openEngine(log)
	if err != nil {
		return err
	}
	defer eng.Close()
	computeType := c.ComputeType
	if computeType == "" {
		computeType = eng.computeType()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs, err := server.NewSchedObserver(reg)
	if err != nil {
		return err
	}
	gobs, err := server.NewDecodeObserver(reg)
	if err != nil {
		return err
	}
	lo := c.loadOptions(eng, obs, log)
	lo.Decode.Observer = gobs
	src, err := newModelSource(&c.ModelFlags, lo, log)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Task:               os.Getenv("TASK"),
		ComputeType:        computeType,
		MaxBodyBytes:       c.PayloadLimit,
		RequestTimeout:     c.RequestTimeout,
		MaxClientBatchSize: c.MaxClientBatchSize,
		Registry:           reg,
		Logger:             log,
		Version:            version,
		WebhookSecret:      c.WebhookSecret,
		Load:               src.Load,
		Reloader:           src,
	})
	if err != nil {
		return err
	}
	hf, err := c.humanFirst(srv, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	printBanner(ln.Addr(), src.name())
	log.Info("serving", "addr", ln.Addr().String(), "model", src.name(), "device", eng.device(), "ort", eng.env.Library(), "ort_version", eng.env.Version())

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	running := 1
	if hf != nil {
		gln, err := net.Listen("tcp", c.GRPCAddr)
		if err != nil {
			srv.Shutdown(context.Background())
			return fmt.Errorf("listen %s: %w", c.GRPCAddr, err)
		}
		log.Info("serving HumanFirst gRPC services over mTLS", "addr", gln.Addr().String())
		go func() { errc <- hf.Serve(gln) }()
		running++
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	var serveErr error
	select {
	case serveErr = <-errc:
		running--
		log.Error("a listener stopped; shutting down", "err", serveErr)
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String(), "timeout", c.ShutdownTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	// gRPC first: a training in flight may still need the HTTP side's model.
	var errs []error
	if hf != nil {
		if err := hf.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("humanfirst: %w", err))
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	for ; running > 0; running-- {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// loadOptions turns the flags into pipelines.LoadOptions. On the CPU, with one thread per
// batch, the workers share one session by default: a session each runs 8-16 % faster (runs
// sharing a session share its memory arena) but every session's arena grows to its own
// largest batch, which cost +18 % RSS over the 100k-request test (bench/RESULTS.md), so it is
// --sessions' choice. With more threads each worker gets its own session and thread pool. On
// CUDA one session serves two workers, so one batch's host work overlaps the other's GPU
// work, and the graph is tuned for the device (see DeviceFlags).
func (c *ModelFlags) loadOptions(eng *engine, obs sched.Observer, log *slog.Logger) pipelines.LoadOptions {
	workers := c.Workers
	threads := max(c.Threads, 1)
	sessions := c.Sessions
	if workers <= 0 {
		workers = runtime.NumCPU()
		if eng.provider != nil {
			workers = 2
		}
	}
	switch {
	case sessions == rt.SessionsPerWorker:
	case sessions <= 0 && eng.provider == nil && threads > 1:
		sessions = workers // each worker's thread pool is its own
	case sessions <= 0:
		sessions = 1
	}
	o := pipelines.LoadOptions{
		Task:     c.Task,
		ONNXFile: c.ONNXFile,
		Opener:   eng.env,
		Runtime: rt.Options{
			IntraOpThreads: threads,
			InterOpThreads: 1,
			Optimization:   rt.GraphOptimization(c.GraphOptimization),
			NoSpinning:     threads > 1 && workers > 1,
		},
		Sessions:    sessions,
		SoloThreads: c.soloThreads(eng.provider != nil, threads),
		Sched: sched.Config{
			MaxBatchTokens:        c.MaxBatchTokens,
			MaxBatchSize:          c.MaxBatchSize,
			MaxQueueDelay:         c.MaxQueueDelay,
			MaxConcurrentRequests: c.MaxConcurrentRequests,
			Workers:               workers,
			RunOverheadTokens:     c.BatchOverheadTokens,
			Observer:              obs,
		},
		Decode: sched.DecodeConfig{
			MaxBatchSize:     c.MaxBatchSize,
			MaxBatchTokens:   c.MaxBatchTotalTokens,
			MaxPrefillTokens: c.MaxBatchPrefillTokens,
		},
		MaxClientBatchSize: c.MaxClientBatchSize,
		Device:             eng.device(),
		Graph:              c.graphOptions(eng.provider != nil),
		Logger:             log,
	}
	if eng.provider != nil {
		o.Runtime.Provider = eng.provider
		if c.BatchOverheadTokens == 0 {
			// On the H100 (bench/RESULTS.md, GPU) a 1×16 run takes about as long as a 64×16
			// one: a run's fixed cost outweighs any padding a split would save.
			o.Sched.RunOverheadTokens = -1
		}
	}
	return o
}

// soloThreads resolves --solo-threads: by default, on the CPU, a lone batch gets a thread per
// core when the workers' sessions have fewer.
func (c *ModelFlags) soloThreads(cuda bool, threads int) int {
	if c.SoloThreads > 0 {
		return c.SoloThreads
	}
	if cuda {
		return 1
	}
	return rt.DefaultSoloThreads(threads)
}

func printBanner(addr net.Addr, model string) {
	port := 8000
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = tcp.Port
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	fmt.Fprintf(os.Stderr, "\nInfergo is serving %s at %s (the model loads in the background: /health answers 200 once it is ready)\n", model, url)
	fmt.Fprintf(os.Stderr, "Try:\n  curl -s %s/info\n", url)
	fmt.Fprintf(os.Stderr, "  curl -s %s/ -d '{\"inputs\": \"Hello world\"}'   # runs the model's task (embeddings, classification, generation)\n", url)
	fmt.Fprintf(os.Stderr, "  curl -s %s/embed -H 'Content-Type: application/json' -d '{\"inputs\": \"Hello world\"}'   # TEI route, embedding models\n\n", url)
}
