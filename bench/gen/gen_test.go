// Package gen benchmarks text generation through the pipeline: aggregate tokens/s and time
// to first token at 1, 4, 16 and 64 concurrent streams on the tiny-gpt2 fixture, with
// continuous batching on and off. See bench/RESULTS.md ("Text generation").
package gen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/bench/gpt2model"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

// Prompts of different lengths, so batches are ragged (left-padded).
var prompts = []string{
	"Hello",
	"The quick brown fox",
	"Once upon a time, in a land far away,",
	"In the beginning the Universe was created. This has made a lot of people very angry",
	"It was a bright cold day in April, and the clocks were striking thirteen.",
	"Call me Ishmael.",
}

// newTokens is each request's max_new_tokens.
const newTokens = 64

func load(b *testing.B, loops, maxBatch int) *pipelines.Model {
	return loadDir(b, testutil.Fixture("tiny-gpt2"), loops, 1, maxBatch, 0)
}

func loadDir(b *testing.B, dir string, loops, threads, maxBatch, maxPrefill int) *pipelines.Model {
	b.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{
		Task: pipelines.TaskTextGeneration, Opener: env,
		Runtime: runtime.Options{IntraOpThreads: threads},
		Sched:   sched.Config{Workers: loops, MaxConcurrentRequests: 1024},
		Decode:  sched.DecodeConfig{MaxBatchSize: maxBatch, MaxPrefillTokens: maxPrefill},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// BenchmarkGenerateGPT2Small is BenchmarkGenerate on a GPT-2-small-shaped graph with random
// weights (bench/gpt2model; 650 MB written to bench/testdata/gpt2-small on first use), 32 new
// tokens per request. It runs only with INFERGO_BENCH_GPT2=1: a full pass takes minutes.
func BenchmarkGenerateGPT2Small(b *testing.B) {
	if os.Getenv("INFERGO_BENCH_GPT2") != "1" {
		b.Skip("set INFERGO_BENCH_GPT2=1 to run")
	}
	dir, err := gpt2model.Ensure(testutil.Root(), filepath.Join(testutil.Root(), "bench", "testdata", "gpt2-small"), gpt2model.Small)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name                                 string
		loops, threads, maxBatch, maxPrefill int
		streams                              []int
	}{
		{"batched/loops=1/threads=2", 1, 2, 64, 0, []int{1, 4, 16, 64}},
		{"batched/loops=2/threads=1", 2, 1, 64, 0, []int{1, 4, 16, 64}},
		// A small prefill budget spreads the 64-stream burst over several iterations.
		{"batched/loops=2/threads=1/prefill=64", 2, 1, 64, 64, []int{64}},
		// One request at a time per loop: 64 streams would take many minutes.
		{"unbatched/loops=1/threads=2", 1, 2, 1, 0, []int{1, 16}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := loadDir(b, dir, c.loops, c.threads, c.maxBatch, c.maxPrefill) // once: loading takes tens of seconds
			for _, streams := range c.streams {
				b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) { closedLoop(b, m, streams, 32) })
			}
		})
	}
}

// BenchmarkGenerate runs b.N requests from `streams` concurrent clients (closed loop), each
// generating newTokens tokens greedily (no eos: the fixture's eos never wins), and reports
// aggregate generated tokens/s and the time to first token (p50, p99).
func BenchmarkGenerate(b *testing.B) {
	for _, c := range []struct {
		name            string
		loops, maxBatch int
	}{
		{"batched/loops=1", 1, 64},
		{"batched/loops=2", 2, 64},
		{"unbatched/loops=2", 2, 1},
	} {
		for _, streams := range []int{1, 4, 16, 64} {
			b.Run(fmt.Sprintf("%s/streams=%d", c.name, streams), func(b *testing.B) {
				closedLoop(b, load(b, c.loops, c.maxBatch), streams, newTokens)
			})
		}
	}
}

// closedLoop runs max(b.N, streams) requests of n new tokens from `streams` concurrent
// clients (so every stream has work) and reports aggregate generated tokens/s and the time to
// first token (p50, p99).
func closedLoop(b *testing.B, m *pipelines.Model, streams, n int) {
	total := int64(max(b.N, streams))
	p := m.Generator.GenerateDefaults()
	p.MaxNewTokens = n
	var next, tokens atomic.Int64
	var mu sync.Mutex
	var ttft []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				var first time.Duration
				out, _, err := m.Generator.Generate(context.Background(), prompts[i%int64(len(prompts))], p,
					func(ev pipelines.GenerateEvent) error {
						if first == 0 {
							first = time.Since(t0)
						}
						return nil
					})
				if err != nil {
					b.Error(err)
					return
				}
				tokens.Add(int64(len(out[0].Tokens)))
				mu.Lock()
				ttft = append(ttft, first)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(ttft)
	pct := func(q float64) float64 {
		if len(ttft) == 0 {
			return 0
		}
		return float64(ttft[min(len(ttft)-1, int(q*float64(len(ttft))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(tokens.Load())/elapsed.Seconds(), "tokens/s")
	b.ReportMetric(pct(0.5), "ttft-p50-ms")
	b.ReportMetric(pct(0.99), "ttft-p99-ms")
}
