package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/bench/load"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/tokenize"
)

// suite is what every benchmark shares: the ONNX Runtime environment, the model directory
// and the tokenized corpora. It is built once, on first use, so that `go test` without
// -bench never touches the 90 MB model.
type suite struct {
	env     *ort.Environment
	dir     string
	graph   string
	corpora []*harness.Corpus
	// Infergo's settings, as `infergo serve` picks them on this machine.
	workers, threads int
}

var (
	suiteOnce sync.Once
	theSuite  *suite
	suiteErr  error
)

func getSuite(b *testing.B) *suite {
	b.Helper()
	suiteOnce.Do(func() { theSuite, suiteErr = newSuite() })
	if suiteErr != nil {
		b.Skip(suiteErr)
	}
	return theSuite
}

func newSuite() (*suite, error) {
	dir := filepath.Join(testutil.Root(), "bench", "testdata", "model")
	graph := filepath.Join(dir, "onnx", "model.onnx")
	if _, err := os.Stat(filepath.Join(dir, "onnx", "model.onnx.data")); err != nil {
		return nil, fmt.Errorf("no benchmark model (run `make bench-model`): %w", err)
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	s := &suite{env: env, dir: dir, graph: graph, workers: goruntime.NumCPU(), threads: 1}
	for _, name := range []string{"short", "passages"} {
		c, err := harness.LoadCorpus(filepath.Join(testutil.Root(), "bench", "testdata", name+".txt"), tok, 512)
		if err != nil {
			return nil, err
		}
		s.corpora = append(s.corpora, c)
	}
	return s, nil
}

func (s *suite) model() harness.ModelConfig {
	return harness.ModelConfig{Dir: s.dir, Opener: s.env, Workers: s.workers, Threads: s.threads}
}

// runPasses makes a warm-up pass, then one pass over the corpus per b.N iteration, and
// reports sequences per second and the median per-call latency.
func runPasses(b *testing.B, r harness.Runner) {
	b.Helper()
	ctx := context.Background()
	if _, err := r.Pass(ctx); err != nil {
		b.Fatal(err)
	}
	seqs := 0
	var lat []float64
	var elapsed time.Duration
	b.ResetTimer()
	for b.Loop() {
		p, err := r.Pass(ctx)
		if err != nil {
			b.Fatal(err)
		}
		seqs += p.Seqs
		elapsed += p.Elapsed
		lat = append(lat, float64(p.P50()))
	}
	b.ReportMetric(float64(seqs)/elapsed.Seconds(), "seq/s")
	b.ReportMetric(harness.Median(lat)/1e6, "p50-ms")
}

// BenchmarkRawLoop is (a): onnxruntime_go directly, pre-tokenised batches of 32 sorted by
// length, with one caller using every core's threads (the peers' headline) and with
// Infergo's own workers × threads.
func BenchmarkRawLoop(b *testing.B) {
	s := getSuite(b)
	cores := s.workers * s.threads
	for _, c := range s.corpora {
		for _, cfg := range []harness.RawConfig{
			{Batch: 32, Sorted: true, Threads: cores, Callers: 1},
			{Batch: 32, Sorted: true, Threads: s.threads, Callers: s.workers},
		} {
			cfg.Graph = s.graph
			b.Run(fmt.Sprintf("%s/b32-%dx%d", c.Name, cfg.Callers, cfg.Threads), func(b *testing.B) {
				r, err := harness.NewRawRunner(cfg, c)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				runPasses(b, r)
			})
		}
	}
}

// BenchmarkInProcess is (b): pipelines.Embeddings through the scheduler, 32 callers.
func BenchmarkInProcess(b *testing.B) {
	s := getSuite(b)
	for _, c := range s.corpora {
		b.Run(c.Name+"/c32", func(b *testing.B) {
			m, err := s.model().Load(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			r, err := harness.NewInProcessRunner(m, harness.InProcessConfig{Callers: 32}, c)
			if err != nil {
				b.Fatal(err)
			}
			runPasses(b, r)
		})
	}
}

// BenchmarkHTTP is (c): the real server on loopback, 32 clients of bench/load on /embed.
func BenchmarkHTTP(b *testing.B) {
	benchHTTP(b, getSuite(b).model())
}

// BenchmarkNoBatching is (d): the same server running one sequence per model run.
func BenchmarkNoBatching(b *testing.B) {
	benchHTTP(b, harness.NoBatching(getSuite(b).model()))
}

func benchHTTP(b *testing.B, mc harness.ModelConfig) {
	s := getSuite(b)
	for _, c := range s.corpora {
		b.Run(c.Name+"/c32", func(b *testing.B) {
			m, err := mc.Load(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			srv, err := harness.StartServer(m)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			runPasses(b, harness.NewHTTPRunner(srv.URL, harness.HTTPConfig{Clients: 32, Route: load.RouteTEI}, c))
		})
	}
}

// BenchmarkTokenize measures the tokenizer alone, one text per call as the pipeline calls
// it: the share of a request's CPU that tokenization takes (run `make bench-model` first for
// the tokenizer file).
func BenchmarkTokenize(b *testing.B) {
	s := getSuite(b)
	tok, err := tokenize.FromFile(filepath.Join(s.dir, "tokenizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	opts := tokenize.Options{AddSpecialTokens: true, Truncation: &tokenize.Truncation{MaxLength: 512}}
	for _, c := range s.corpora {
		b.Run(c.Name, func(b *testing.B) {
			tokens, texts := 0, 0
			for b.Loop() {
				for _, t := range c.Texts {
					enc, err := tok.Encode(t, opts)
					if err != nil {
						b.Fatal(err)
					}
					tokens += enc.Len()
					texts++
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(texts), "µs/text")
		})
	}
}
