// Command gpu benchmarks Infergo's embeddings on a GPU against itself in several graph and
// provider settings, on the MiniLM-L6-shaped benchmark model (random weights, generated here
// from the 111 KB graph in testdata, so nothing large has to be carried to the GPU machine).
// Two modes per shape: "sched" submits pre-tokenized batches straight to the batching
// scheduler (the model path PyTorch's timing covers: inputs in, pooled [batch, hidden] out),
// "e2e" calls the embeddings pipeline (validation, tokenization, scheduler, pooling,
// normalisation) from concurrent clients. It prints one JSON object per measurement and writes
// them all to -out. scripts/gpu-run.sh runs it beside bench/gpu/torch_bench.py.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infergo/infergo/bench/benchmodel"
	"github.com/infergo/infergo/cuda"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/bucket"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// Variant is one way of running the model.
type Variant struct {
	Name        string
	Device      string // cpu or cuda
	CUDAOptions string
	Graph       pipelines.GraphOptions
	Threads     int // intra-op threads (CPU variants)
	MaxSeq      int // largest sequence length it is run at (CPU variants skip long ones)
}

// variants are the settings GPU.md left open, from ONNX Runtime as exported to Infergo's
// CUDA defaults (pooling in the graph, 16-token buckets, TF32) and fp16.
var variants = []Variant{
	{Name: "cpu-fp32", Device: "cpu", Threads: 16, MaxSeq: 16},
	{Name: "cuda-fp32-exported", Device: "cuda", CUDAOptions: "use_tf32=0"},
	{Name: "cuda-tf32-exported", Device: "cuda"},
	{Name: "cuda-tf32-pooled", Device: "cuda", Graph: pipelines.GraphOptions{PoolInGraph: true}},
	{Name: "cuda-tf32-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{PoolInGraph: true, SeqBucket: 16}},
	{Name: "cuda-fp16-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{PoolInGraph: true, SeqBucket: 16, Float16: true}},
	{Name: "cuda-tf32-mha-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{FuseAttention: true, PoolInGraph: true, SeqBucket: 16}},
	{Name: "cuda-fp16-mha-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{FuseAttention: true, PoolInGraph: true, SeqBucket: 16, Float16: true}},
	// The fused attention with the padding as key lengths, and without a mask (a bound:
	// right only for the benchmark's unpadded batches); ONNX Runtime picks kernels by it.
	{Name: "cuda-fp16-mhakeylen-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{FuseAttention: true, AttentionMask: onnxgraph.MaskKeyLengths, PoolInGraph: true, SeqBucket: 16, Float16: true}},
	{Name: "cuda-fp16-mhanomask-pooled-bucket16", Device: "cuda", Graph: pipelines.GraphOptions{FuseAttention: true, AttentionMask: onnxgraph.MaskNone, PoolInGraph: true, SeqBucket: 16, Float16: true}},
}

// Shape is batch × sequence length (tokens, special tokens included).
type Shape struct{ Batch, Seq int }

func (s Shape) String() string { return fmt.Sprintf("%dx%d", s.Batch, s.Seq) }

// Result is one measurement.
type Result struct {
	Variant string  `json:"variant"`
	Mode    string  `json:"mode"`
	Shape   string  `json:"shape"`
	Clients int     `json:"clients"`
	Calls   int     `json:"calls"`
	P50ms   float64 `json:"p50_ms"`
	P90ms   float64 `json:"p90_ms"`
	SeqPerS float64 `json:"seq_per_s"`
	Error   string  `json:"error,omitempty"`
}

func main() {
	root := flag.String("root", ".", "repository root (testdata/ is read from it)")
	dir := flag.String("model", filepath.Join(os.TempDir(), "infergo-benchmodel"), "where to write the benchmark model")
	out := flag.String("out", "gpu-bench.json", "JSON results file")
	only := flag.String("variants", "", "comma-separated variant names (default: all)")
	shapes := flag.String("shapes", "1x16,64x16,256x128,512x128", "batch×seq shapes")
	iters := flag.Int("iters", 20, "timed calls per measurement (the median is reported)")
	warmup := flag.Int("warmup", 5, "untimed calls first")
	clients := flag.Int("clients", 8, "concurrent clients in e2e mode (batch 1: also 1 client)")
	profile := flag.String("profile", "", "also write an ONNX Runtime profile of each CUDA variant (3 runs at -profile-shape) into this folder")
	profileShape := flag.String("profile-shape", "256x128", "batch×seq of the profiled runs")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	modelDir, err := prepareModel(*root, *dir)
	if err != nil {
		fail(err)
	}
	var sh []Shape
	for _, s := range strings.Split(*shapes, ",") {
		b, q, ok := strings.Cut(strings.TrimSpace(s), "x")
		bi, e1 := strconv.Atoi(b)
		qi, e2 := strconv.Atoi(q)
		if !ok || e1 != nil || e2 != nil || bi < 1 || qi < 3 {
			fail(fmt.Errorf("shape %q: want BATCHxSEQ", s))
		}
		sh = append(sh, Shape{bi, qi})
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		fail(err)
	}
	defer env.Close()
	fmt.Fprintf(os.Stderr, "bench: ONNX Runtime %s (%s), %d CPUs, model %s\n", env.Version(), env.Library(), goruntime.NumCPU(), modelDir)

	var results []Result
	// The file is rewritten after each variant, so a run cut short keeps what it measured.
	save := func() {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fail(err)
		}
	}
	for _, v := range variants {
		if *only != "" && !contains(strings.Split(*only, ","), v.Name) {
			continue
		}
		rs, err := runVariant(env, modelDir, v, sh, *iters, *warmup, *clients, log)
		if err == nil && *profile != "" && v.Device == "cuda" {
			if perr := profileVariant(env, modelDir, v, *profileShape, *profile); perr != nil {
				fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", v.Name, perr)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", v.Name, err)
			rs = append(rs, Result{Variant: v.Name, Error: err.Error()})
		}
		results = append(results, rs...)
		save()
	}
	save()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// prepareModel writes the benchmark model and gives it sentence-transformers mean pooling, as
// all-MiniLM-L6-v2 has, so the pipeline pools (and can pool in the graph).
func prepareModel(root, dir string) (string, error) {
	dir, err := benchmodel.Ensure(root, dir)
	if err != nil {
		return "", err
	}
	files := map[string]string{
		"modules.json":              `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]`,
		"1_Pooling/config.json":     `{"word_embedding_dimension":384,"pooling_mode_mean_tokens":true}`,
		"sentence_bert_config.json": `{"max_seq_length":512,"do_lower_case":false}`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// texts returns n texts of exactly seq tokens ([CLS] and [SEP] included).
func texts(tok *tokenize.Tokenizer, n, seq int) ([]string, error) {
	words := strings.Fields("the quick brown fox jumps over a lazy dog while people watch from the river bank")
	out := make([]string, n)
	for i := range out {
		w := make([]string, seq-2)
		for k := range w {
			w[k] = words[(i+k)%len(words)]
		}
		out[i] = strings.Join(w, " ")
	}
	encs, err := tok.EncodeBatch([]tokenize.Input{{Text: out[0]}}, tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		return nil, err
	}
	if encs[0].Len() != seq {
		return nil, fmt.Errorf("text of %d words gives %d tokens, want %d", seq-2, encs[0].Len(), seq)
	}
	return out, nil
}

// timings summarises call latencies.
func timings(d []time.Duration) (p50, p90 float64) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return ms(d[len(d)/2]), ms(d[len(d)*9/10])
}

func runVariant(env *ort.Environment, dir string, v Variant, shapes []Shape, iters, warmup, clients int, log *slog.Logger) ([]Result, error) {
	var prov *cuda.Provider
	if v.Device == "cuda" {
		o, err := cuda.ParseOptions(v.CUDAOptions)
		if err != nil {
			return nil, err
		}
		if prov, err = cuda.NewProvider(env, cuda.Device{Kind: cuda.CUDA}, o, cuda.Finder{}); err != nil {
			return nil, err
		}
		defer prov.Close()
	}
	ropts := runtime.Options{IntraOpThreads: max(v.Threads, 1), InterOpThreads: 1}
	if prov != nil {
		ropts.Provider = prov
	}
	maxBatch, maxSeq := 1, 1
	for _, s := range shapes {
		maxBatch, maxSeq = max(maxBatch, s.Batch), max(maxSeq, s.Seq)
	}
	scfg := sched.Config{MaxBatchSize: maxBatch, MaxBatchTokens: maxBatch * (maxSeq + 16), MaxConcurrentRequests: 4096, Workers: 2}
	repo, err := models.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	t0 := time.Now()
	m, err := pipelines.Load(ctx, repo, pipelines.LoadOptions{
		Opener: env, Runtime: ropts, Sched: scfg, MaxClientBatchSize: maxBatch,
		Device: v.Device, Graph: v.Graph, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	defer m.Close(ctx)
	fmt.Fprintf(os.Stderr, "bench: %s loaded in %s\n", v.Name, time.Since(t0).Round(time.Millisecond))
	s, closeSched, err := rawScheduler(env, repo, v, ropts, scfg)
	if err != nil {
		return nil, err
	}
	defer closeSched()
	tok, err := tokenize.FromFile(repo.Path("tokenizer.json"))
	if err != nil {
		return nil, err
	}

	var results []Result
	for _, shape := range shapes {
		if v.MaxSeq > 0 && shape.Seq > v.MaxSeq {
			continue
		}
		txt, err := texts(tok, shape.Batch, shape.Seq)
		if err != nil {
			return results, err
		}
		encs, err := tok.EncodeBatch(inputs(txt), tokenize.Options{AddSpecialTokens: true})
		if err != nil {
			return results, err
		}
		seqs := make([]sched.Sequence, len(encs))
		for i, e := range encs {
			seqs[i] = sched.Sequence{IDs: e.IDs, TypeIDs: e.TypeIDs}
		}
		// sched: one client, pre-tokenized batches.
		lat, err := measure(warmup, iters, 1, func() error { _, err := s.Submit(ctx, seqs); return err })
		r := Result{Variant: v.Name, Mode: "sched", Shape: shape.String(), Clients: 1, Calls: iters}
		record(&r, lat, err, shape.Batch)
		results = append(results, r)
		emit(r)
		// e2e: the pipeline from concurrent clients (one for single queries: the latency case).
		c := clients
		if shape.Batch == 1 {
			c = 1
		}
		// About 10k sequences per measurement (3 to 100 calls per client).
		perClient := min(max(10240/(shape.Batch*c), 3), 100)
		opts := pipelines.EmbedOptions{Truncate: true}
		lat, err = measure(warmup, perClient, c, func() error { _, _, err := m.Embedder.Embed(ctx, txt, opts); return err })
		r = Result{Variant: v.Name, Mode: "e2e", Shape: shape.String(), Clients: c, Calls: perClient * c}
		record(&r, lat, err, shape.Batch)
		results = append(results, r)
		emit(r)
	}
	return results, nil
}

func inputs(txt []string) []tokenize.Input {
	in := make([]tokenize.Input, len(txt))
	for i, t := range txt {
		in[i] = tokenize.Input{Text: t}
	}
	return in
}

// rawScheduler builds what pipelines.Load builds, minus the pipeline: sessions on the
// (rewritten) graph, buckets, scheduler.
func rawScheduler(env *ort.Environment, repo *models.Repo, v Variant, ropts runtime.Options, scfg sched.Config) (*sched.Scheduler, func(), error) {
	path := repo.Path("onnx/model.onnx")
	spec := onnxgraph.Spec{Float16: v.Graph.Float16, FuseAttention: v.Graph.FuseAttention, AttentionMask: v.Graph.AttentionMask}
	if v.Graph.PoolInGraph {
		spec.Pool = &onnxgraph.PoolSpec{Mode: models.PoolMean}
		ropts.Outputs = []string{onnxgraph.PooledOutput}
	}
	path, err := onnxgraph.Prepare(path, spec)
	if err != nil {
		return nil, nil, err
	}
	sess, err := env.Open(context.Background(), path, ropts)
	if err != nil {
		return nil, nil, err
	}
	run := runtime.Session(sess)
	if v.Graph.SeqBucket > 1 {
		if run, err = bucket.Wrap(sess, bucket.Config{Multiple: v.Graph.SeqBucket, MaxLength: 512}); err != nil {
			sess.Close()
			return nil, nil, err
		}
	}
	s, err := sched.New([]runtime.Session{run}, scfg)
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(context.Background()); sess.Close() }, nil
}

// measure runs call warmup times, then iters times from each of c clients, and returns
// every timed call's latency and the wall time of the timed part.
func measure(warmup, iters, c int, call func() error) (lat []time.Duration, err error) {
	for i := 0; i < warmup; i++ {
		if err := call(); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < c; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				t := time.Now()
				err := call()
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	// The wall time rides along as the last element (see record).
	return append(lat, wall), errors.Join(errs...)
}

// record fills r from measure's output: latency percentiles, and throughput as sequences per
// second (one client: batch / median latency; several: all sequences / wall time).
func record(r *Result, lat []time.Duration, err error, batch int) {
	if err != nil {
		r.Error = err.Error()
		return
	}
	wall := lat[len(lat)-1]
	lat = lat[:len(lat)-1]
	r.P50ms, r.P90ms = timings(lat)
	if r.Clients == 1 {
		r.SeqPerS = float64(batch) / (r.P50ms / 1000)
	} else {
		r.SeqPerS = float64(batch*len(lat)) / wall.Seconds()
	}
}

func emit(r Result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}
