package pipelines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// LoadOptions configure Load.
type LoadOptions struct {
	// Task is the pipeline tag to serve; "" infers it from the repo.
	Task string
	// ONNXFile picks the graph (a path in the repo or a variant such as "quantized").
	ONNXFile string
	// Opener loads graphs (runtime/ort in production).
	Opener runtime.Opener
	// Runtime configures each session (threads, optimisation, provider).
	Runtime runtime.Options
	// Sessions is how many sessions to open (default 1); the scheduler's workers share them.
	Sessions int
	// Sched configures the batching scheduler.
	Sched sched.Config
	// MaxClientBatchSize bounds the inputs of one request (0: unbounded).
	MaxClientBatchSize int
	// Device names where the model runs, for Info ("cpu" by default).
	Device string
	// Graph adapts the graph to the device (in-graph pooling, float16, shape buckets).
	Graph GraphOptions
	// Logger receives load progress; nil uses slog.Default().
	Logger *slog.Logger
}

// Load opens a model repo for its task: graph sessions, tokenizer, scheduler and pipeline,
// then warms it up with one request so the first client pays no start-up cost.
func Load(ctx context.Context, repo *models.Repo, o LoadOptions) (m *Model, err error) {
	if o.Opener == nil {
		return nil, errors.New("pipelines: load: no runtime opener")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	graph, err := repo.ONNXFile(o.ONNXFile)
	if err != nil {
		return nil, err
	}
	prep, err := prepareGraph(repo, repo.Path(graph), o, log)
	if err != nil {
		return nil, err
	}
	rtOpts := o.Runtime
	if prep.pooled {
		rtOpts.Outputs = []string{onnxgraph.PooledOutput}
	}
	n := max(o.Sessions, 1)
	sessions := make([]runtime.Session, 0, n)
	closeSessions := func() {
		for _, s := range sessions {
			s.Close()
		}
	}
	defer func() {
		if err != nil {
			closeSessions()
		}
	}()
	for i := 0; i < n; i++ {
		s, err := o.Opener.Open(ctx, prep.path, rtOpts)
		if err != nil {
			return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
		}
		sessions = append(sessions, s)
	}
	info := sessions[0].Info()
	task := o.Task
	if task == "" {
		task = prep.task
	}
	if task == "" {
		ranks := map[string]int{}
		for _, out := range info.Outputs {
			ranks[out.Name] = len(out.Shape)
		}
		if task, err = repo.InferTask(ranks); err != nil {
			return nil, err
		}
	}
	if !repo.Has("tokenizer.json") {
		return nil, fmt.Errorf("pipelines: load %s: no tokenizer.json", repo.ID)
	}
	tok, err := tokenize.FromFile(repo.Path("tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, err
	}
	tcfg, err := repo.TokenizerConfig()
	if err != nil {
		return nil, err
	}
	scfg := o.Sched
	scfg.PadID = padID(tok, cfg)

	device := o.Device
	if device == "" {
		device = "cpu"
	}
	mi := Info{
		ModelID: repo.ID, Revision: repo.Commit, Task: task, Device: device,
		MaxClientBatchSize: o.MaxClientBatchSize,
	}
	switch task {
	case TaskFeatureExtraction, TaskSentenceSimilarity:
		st, err := repo.SentenceTransformers()
		if err != nil {
			return nil, err
		}
		maxLen := maxInputLength(st, cfg, tcfg)
		run, err := bucketed(sessions, o.Graph, cfg.MaxPositions(), scfg.PadID)
		if err != nil {
			return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
		}
		s, err := sched.New(run, scfg)
		if err != nil {
			return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
		}
		tokens := &lazyTokens{open: func(ctx context.Context) (runtime.Session, *sched.Scheduler, error) {
			ropts := o.Runtime
			ropts.Outputs = nil // the token-level output and the pooled one: EmbedTokens uses the first
			sess, err := o.Opener.Open(ctx, prep.path, ropts)
			if err != nil {
				return nil, nil, fmt.Errorf("pipelines: token-level session for %s: %w", repo.ID, err)
			}
			wrapped, err := bucketed([]runtime.Session{sess}, o.Graph, cfg.MaxPositions(), scfg.PadID)
			if err == nil {
				var ts *sched.Scheduler
				if ts, err = sched.New(wrapped, scfg); err == nil {
					return sess, ts, nil
				}
			}
			sess.Close()
			return nil, nil, fmt.Errorf("pipelines: token-level scheduler for %s: %w", repo.ID, err)
		}}
		ecfg := EmbeddingsConfig{Tokenizer: tok, Scheduler: s, ST: st, MaxLength: maxLen, MaxClientBatchSize: o.MaxClientBatchSize}
		if prep.pooled {
			ecfg.TokenLevel = tokens.get
		}
		emb, err := NewEmbeddings(ecfg)
		if err != nil {
			s.Close(ctx)
			return nil, err
		}
		mi.Dimensions, mi.MaxInputLength = emb.Hidden(), maxLen
		mi.Pooling, mi.Normalize = string(emb.Pooling()), emb.Normalizes()
		fillLimits(&mi, s.Config())
		m = NewModel(mi, func(ctx context.Context) error {
			err := errors.Join(s.Close(ctx), tokens.close(ctx))
			closeSessions()
			return err
		})
		m.Embedder = emb
		m.Tokenizer = NewTextTokenizer(tok)
		if _, _, err := emb.Embed(ctx, []string{"Infergo warm-up"}, EmbedOptions{Truncate: true}); err != nil {
			m.Close(ctx)
			return nil, fmt.Errorf("pipelines: warm up %s: %w", repo.ID, err)
		}
	default:
		return nil, fmt.Errorf("pipelines: task %q is not supported yet", task)
	}
	log.Info("pipeline ready", "model", repo.ID, "task", task, "graph", graph, "sessions", n,
		"rewritten", prep.path != repo.Path(graph), "pooled_in_graph", prep.pooled, "fp16", o.Graph.Float16, "fuse_attention", o.Graph.FuseAttention, "seq_bucket", o.Graph.SeqBucket,
		"max_input_length", mi.MaxInputLength, "device", device)
	return m, nil
}

func fillLimits(mi *Info, c sched.Config) {
	mi.MaxBatchTokens, mi.MaxBatchSize, mi.MaxConcurrentRequests = c.MaxBatchTokens, c.MaxBatchSize, c.MaxConcurrentRequests
}

// maxInputLength follows sentence-transformers: max_seq_length when configured, else the
// smaller of the tokenizer's model_max_length and the model's position limit.
func maxInputLength(st *models.SentenceTransformers, cfg models.Config, tcfg models.TokenizerConfig) int {
	if st != nil && st.MaxSeqLength > 0 {
		return st.MaxSeqLength
	}
	n := math.MaxInt
	if tcfg.ModelMaxLength > 0 && tcfg.ModelMaxLength < 1e9 {
		n = int(tcfg.ModelMaxLength)
	}
	if p := cfg.MaxPositions(); p > 0 {
		n = min(n, p)
	}
	if n == math.MaxInt {
		n = 512
	}
	return n
}

// padID is the id padded positions get: the tokenizer's padding config, else the model's
// pad_token_id, else 0. Masked positions do not affect real tokens, but an id outside the
// vocabulary would make the embedding lookup fail.
func padID(tok *tokenize.Tokenizer, cfg models.Config) int64 {
	if p := tok.Padding(); p != nil {
		return int64(p.PadID)
	}
	if cfg.PadTokenID != nil {
		return *cfg.PadTokenID
	}
	return 0
}
