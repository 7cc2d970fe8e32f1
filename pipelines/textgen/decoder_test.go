package textgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

type golden struct {
	EOS    int32 `json:"eos_token_id"`
	Greedy []struct {
		Prompt    string  `json:"prompt"`
		PromptIDs []int32 `json:"prompt_ids"`
		NewIDs    []int32 `json:"new_ids"`
		NewText   string  `json:"new_text"`
	} `json:"greedy"`
}

func loadGolden(t testing.TB) golden {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-gpt2", "golden.json"), &g)
	return g
}

func openGraph(t testing.TB, path string) runtime.Session {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	s, err := env.Open(context.Background(), path, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fixtureGraph(name string) string { return testutil.Fixture("tiny-gpt2", "onnx", name) }

// loopFor builds a decode loop over the graph at path.
func loopFor(t testing.TB, path string, cfg sched.DecodeConfig) (*sched.DecodeLoop, *Decoder) {
	t.Helper()
	d, err := NewDecoder(openGraph(t, path), 4, 16)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sched.NewDecodeLoop(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return l, d
}

// generate runs one greedy sequence (or n sampled ones) through l and returns the ids.
func generate(t testing.TB, l *sched.DecodeLoop, prompt []int32, steps int, s Sampling, eos []int32) []int32 {
	tk, err := l.Admit()
	if err != nil {
		t.Fatal(err)
	}
	seq := &sched.Seq{Cost: len(prompt) + steps, MaxSteps: steps, State: NewSequence(prompt, s, eos, 0)}
	sts, err := tk.Start(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for {
		tok, err := sts[0].Next(context.Background())
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
}

var greedy = Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}

func TestGreedyParity(t *testing.T) {
	g := loadGolden(t)
	for _, graph := range []string{"decoder_with_past_model.onnx", "model.onnx"} {
		t.Run(graph, func(t *testing.T) {
			l, d := loopFor(t, fixtureGraph(graph), sched.DecodeConfig{})
			want := map[string]Layout{"model.onnx": NoCache, "decoder_with_past_model.onnx": WithPast}[graph]
			if d.Layout() != want {
				t.Fatalf("layout %v, want %v", d.Layout(), want)
			}
			for _, c := range g.Greedy {
				got := generate(t, l, c.PromptIDs, len(c.NewIDs), greedy, nil)
				if fmt.Sprint(got) != fmt.Sprint(c.NewIDs) {
					t.Errorf("%q:\n got %v\nwant %v", c.Prompt, got, c.NewIDs)
				}
			}
		})
	}
}

// Many concurrent greedy requests with random prompts and lengths, joining at random times,
// produce exactly what each produces alone.
func TestBatchedEqualsSingle(t *testing.T) {
	for _, graph := range []string{"decoder_with_past_model.onnx", "model.onnx"} {
		t.Run(graph, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			type job struct {
				prompt []int32
				steps  int
				sample bool
			}
			jobs := make([]job, 24)
			for i := range jobs {
				p := make([]int32, 1+rng.IntN(30))
				for k := range p {
					p[k] = int32(1 + rng.IntN(999))
				}
				jobs[i] = job{p, 1 + rng.IntN(25), i%3 == 0}
			}
			sampling := func(j job, i int) Sampling {
				if !j.sample {
					return greedy
				}
				return Sampling{DoSample: true, Temperature: 0.8, TopK: 50, TopP: 0.9, RepetitionPenalty: 1.2, Seed: uint64(i)}
			}
			single, _ := loopFor(t, fixtureGraph(graph), sched.DecodeConfig{MaxBatchSize: 1})
			want := make([][]int32, len(jobs))
			for i, j := range jobs {
				want[i] = generate(t, single, j.prompt, j.steps, sampling(j, i), nil)
			}
			batched, d := loopFor(t, fixtureGraph(graph), sched.DecodeConfig{MaxBatchSize: 16})
			d.parallelAt = 0 // exercise the parallel token choice
			got := make([][]int32, len(jobs))
			var wg sync.WaitGroup
			for i, j := range jobs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i] = generate(t, batched, j.prompt, j.steps, sampling(j, i), nil)
				}()
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			}
			wg.Wait()
			for i := range jobs {
				if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
					t.Errorf("job %d (prompt %d tokens, %d steps, sample %v):\nbatched %v\n single %v", i, len(jobs[i].prompt), jobs[i].steps, jobs[i].sample, got[i], want[i])
				}
			}
			copied, allocs := d.KVStats()
			t.Logf("%s: %d model calls batched vs %d alone; KV floats copied %d, allocations %d", graph, batched.ModelCalls(), single.ModelCalls(), copied, allocs)
			if batched.ModelCalls() >= single.ModelCalls() {
				t.Errorf("batching made no difference: %d calls vs %d", batched.ModelCalls(), single.ModelCalls())
			}
		})
	}
}

func TestEOSEndsSequence(t *testing.T) {
	g := loadGolden(t)
	l, _ := loopFor(t, fixtureGraph("decoder_with_past_model.onnx"), sched.DecodeConfig{})
	c := g.Greedy[0]
	// Treat the 3rd greedy token as end-of-sequence: generation stops right after it.
	eos := []int32{c.NewIDs[2]}
	got := generate(t, l, c.PromptIDs, 20, greedy, eos)
	if fmt.Sprint(got) != fmt.Sprint(c.NewIDs[:3]) {
		t.Errorf("got %v, want %v", got, c.NewIDs[:3])
	}
	// min_new_tokens suppresses it.
	s := greedy
	s.MinNewTokens = 5
	got = generate(t, l, c.PromptIDs, 5, s, eos)
	for i, id := range got {
		if id == eos[0] {
			t.Errorf("eos at step %d despite min_new_tokens", i)
		}
	}
}

// kvCounter wraps a Decoder to count what a design that rebuilt the batch's past tensors
// every step (copying every row's cache into fresh tensors) would copy.
type kvCounter struct {
	*Decoder
	naive  int64
	tokens int64
}

func (k *kvCounter) Step(ctx context.Context, live []*sched.Seq) error {
	k.naive += int64(len(k.inPast) * k.kv.rows * k.kv.rowSize(k.kv.past))
	k.tokens += int64(len(live))
	return k.Decoder.Step(ctx, live)
}

// BenchmarkKVCopies runs 64 concurrent greedy sequences of random prompt and output lengths
// (joining and leaving all the time) and reports the KV-cache floats this decoder copies per
// generated token against a copy-the-batch-every-step design.
func BenchmarkKVCopies(b *testing.B) {
	for i := 0; i < b.N; i++ {
		d, err := NewDecoder(openGraph(b, fixtureGraph("decoder_with_past_model.onnx")), 4, 16)
		if err != nil {
			b.Fatal(err)
		}
		kc := &kvCounter{Decoder: d}
		l, err := sched.NewDecodeLoop(kc, sched.DecodeConfig{MaxBatchSize: 64})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		var wg sync.WaitGroup
		for c := 0; c < 64; c++ {
			wg.Add(1)
			seed := rng.Uint64()
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 1))
				for j := 0; j < 4; j++ {
					p := make([]int32, 1+r.IntN(60))
					for k := range p {
						p[k] = int32(1 + r.IntN(999))
					}
					generate(b, l, p, 8+r.IntN(120), greedy, nil)
				}
			}()
		}
		wg.Wait()
		l.Close(context.Background())
		copied, allocs := d.KVStats()
		b.ReportMetric(float64(copied)/float64(kc.tokens), "copied-floats/token")
		b.ReportMetric(float64(kc.naive)/float64(kc.tokens), "naive-floats/token")
		b.ReportMetric(float64(allocs), "allocs")
	}
}
