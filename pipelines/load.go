package pipelines

import (
	"context"
	"encoding/json"
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
	// runtime.SessionsPerWorker opens one per worker, as many as memory allows.
	Sessions int
	// SoloThreads, when above 1, opens one more session with that many intra-op threads for
	// encoder batches that are the only work (sched.Config.Solo): a lone request then uses
	// every core. CPU only; ignored with a provider, and skipped when one more copy of the
	// graph would not fit runtime.SessionCount's memory budget.
	SoloThreads int
	// Sched configures the batching scheduler. For text generation, Workers is the number of
	// decode loops (each runs one step at a time) and MaxConcurrentRequests their shared
	// request limit.
	Sched sched.Config
	// Decode configures the decode loops (text generation, Whisper); MaxBatchTokens there is
	// the KV-cache budget in positions (default: 1 GiB worth of cache for text generation,
	// the loop's default for Whisper).
	Decode sched.DecodeConfig
	// MaxClientBatchSize bounds the inputs of one request (0: unbounded).
	MaxClientBatchSize int
	// FFmpeg is the ffmpeg executable for audio formats not decoded in Go (Opus, WebM, MP4…);
	// "" looks it up on PATH.
	FFmpeg string
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
	if isSpeechRepo(repo, o.Task) { // several graphs, no tokenizer.json for CTC: asr.go
		return loadSpeech(ctx, repo, o)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	graph, err := repo.ONNXFile(o.ONNXFile)
	if o.Task == TaskTextGeneration {
		graph, err = decoderGraph(repo, o.ONNXFile)
	}
	if err != nil {
		return nil, err
	}
	prep, err := prepareGraph(repo, repo.Path(graph), o, log)
	if err != nil {
		return nil, err
	}
	rtOpts, path := o.Runtime, prep.path
	if prep.pooled {
		rtOpts.Outputs = []string{onnxgraph.PooledOutput}
	}
	n := runtime.SessionCount(o.Sessions, o.Sched.Workers, path)
	sessions := make([]runtime.Session, 0, n)
	var solo runtime.Session
	closeSessions := func() {
		for _, s := range sessions {
			s.Close()
		}
		if solo != nil {
			solo.Close()
		}
	}
	// openSolo opens the solo session (LoadOptions.SoloThreads) into scfg.Solo.
	openSolo := func(scfg *sched.Config) error {
		if o.SoloThreads <= 1 || o.Runtime.Provider != nil {
			return nil
		}
		if runtime.SessionCount(runtime.SessionsPerWorker, n+1, path) <= n {
			log.Info("no solo session: one more copy of the graph would not fit the memory budget", "sessions", n)
			return nil
		}
		ropts := rtOpts
		// Spinning within the run keeps a lone request fast; stopping it when the run ends
		// keeps the idle solo threads off the cores the workers need (bench/RESULTS.md).
		ropts.IntraOpThreads, ropts.NoSpinning, ropts.StopSpinningAfterRun = o.SoloThreads, false, true
		s, err := o.Opener.Open(ctx, path, ropts)
		if err != nil {
			return fmt.Errorf("pipelines: load %s: solo session: %w", repo.ID, err)
		}
		solo, scfg.Solo = s, s
		return nil
	}
	defer func() {
		if err != nil {
			closeSessions()
		}
	}()
	openAll := func() error {
		for i := 0; i < n; i++ {
			s, err := o.Opener.Open(ctx, path, rtOpts)
			if err != nil {
				return fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
			}
			sessions = append(sessions, s)
		}
		return nil
	}
	if err := openAll(); err != nil {
		return nil, err
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
		if task == TaskTextGeneration {
			// Inferred only now: text generation prefers a graph with a KV cache.
			if g, err := decoderGraph(repo, o.ONNXFile); err == nil && g != graph {
				closeSessions()
				sessions, graph = sessions[:0], g
				path, rtOpts = repo.Path(g), o.Runtime
				if err := openAll(); err != nil {
					return nil, err
				}
			}
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
		if err := openSolo(&scfg); err != nil {
			return nil, err
		}
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
	case TaskTextGeneration:
		if m, err = loadTextGeneration(ctx, repo, o, sessions, closeSessions, tok, cfg, &mi, log); err != nil {
			return nil, err
		}
	case TaskTokenClassification, TaskTextClassification:
		if err := openSolo(&scfg); err != nil {
			return nil, err
		}
		s, err := sched.New(sessions, scfg)
		if err != nil {
			return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
		}
		mi.MaxInputLength = maxInputLength(nil, cfg, tcfg)
		fillLimits(&mi, s.Config())
		m = NewModel(mi, func(ctx context.Context) error {
			err := s.Close(ctx)
			closeSessions()
			return err
		})
		m.Tokenizer = NewTextTokenizer(tok)
		if err := addClassifier(ctx, m, repo, task, tok, cfg, s); err != nil {
			m.Close(ctx)
			return nil, err
		}
		mi = m.Info
	default:
		return nil, fmt.Errorf("pipelines: task %q is not supported yet", task)
	}
	log.Info("pipeline ready", "model", repo.ID, "task", task, "graph", graph, "sessions", n, "solo_session", solo != nil,
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

// addClassifier gives m its token- or text-classification pipeline on scheduler s (labels
// from config.json, limits from m.Info) and warms it up.
func addClassifier(ctx context.Context, m *Model, repo *models.Repo, task string, tok *tokenize.Tokenizer, cfg models.Config, s *sched.Scheduler) error {
	labels, err := cfg.Labels()
	if err != nil {
		return err
	}
	maxLen, maxBatch := m.Info.MaxInputLength, m.Info.MaxClientBatchSize
	if task == TaskTokenClassification {
		unk, err := unkToken(repo)
		if err != nil {
			return err
		}
		tc, err := NewTokenClassification(TokenClassificationConfig{Tokenizer: tok, Scheduler: s, Labels: labels,
			MaxLength: maxLen, MaxClientBatchSize: maxBatch, UnkToken: unk})
		if err != nil {
			return err
		}
		m.Info.Labels, m.TokenClassifier = tc.Labels(), tc
		_, _, err = tc.ClassifyTokens(ctx, []string{"Infergo warm-up"}, TokenClassifyOptions{})
		if err != nil {
			return fmt.Errorf("pipelines: warm up %s: %w", repo.ID, err)
		}
		return nil
	}
	xc, err := NewTextClassification(TextClassificationConfig{Tokenizer: tok, Scheduler: s, Labels: labels,
		ProblemType: cfg.ProblemType, MaxLength: maxLen, MaxClientBatchSize: maxBatch})
	if err != nil {
		return err
	}
	m.Info.Labels, m.TextClassifier = xc.Labels(), xc
	if _, _, err := xc.Classify(ctx, []TextInput{{Text: "Infergo warm-up"}}, TextClassifyOptions{Truncate: true}); err != nil {
		return fmt.Errorf("pipelines: warm up %s: %w", repo.ID, err)
	}
	return nil
}

// unkToken reads the tokenizer's unknown token as transformers does: unk_token of
// tokenizer_config.json, else of special_tokens_map.json (a string or an AddedToken object).
func unkToken(repo *models.Repo) (string, error) {
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		if !repo.Has(name) {
			continue
		}
		var c struct {
			Unk json.RawMessage `json:"unk_token"`
		}
		if err := repo.ReadJSON(name, &c); err != nil {
			return "", err
		}
		var s string
		if json.Unmarshal(c.Unk, &s) == nil && s != "" {
			return s, nil
		}
		var added struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(c.Unk, &added) == nil && added.Content != "" {
			return added.Content, nil
		}
	}
	return "", nil
}
