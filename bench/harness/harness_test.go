package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/infergo/infergo/bench/load"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

func TestStats(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]time.Duration{50: 5, 90: 9, 99: 10, 100: 10, 0: 1} {
		if got := Percentile(lat, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	tp, p50 := MedianPass([]Pass{
		{Seqs: 100, Elapsed: time.Second, Latencies: []time.Duration{1, 2, 3}},
		{Seqs: 300, Elapsed: time.Second, Latencies: []time.Duration{4, 5, 6}},
		{Seqs: 200, Elapsed: time.Second, Latencies: []time.Duration{7, 8, 9}},
	})
	if tp != 200 || p50 != 5 {
		t.Errorf("median pass: %v seq/s, p50 %v", tp, p50)
	}
}

func TestFixedBatches(t *testing.T) {
	c := &Corpus{IDs: [][]int32{make([]int32, 5), make([]int32, 2), make([]int32, 9), make([]int32, 2), make([]int32, 1)}}
	got := c.FixedBatches(2, true)
	want := [][]int{{4, 1}, {3, 0}, {2}}
	if len(got) != len(want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("batches %v, want %v", got, want)
			}
		}
	}
	if u := c.FixedBatches(2, false); u[0][0] != 0 || u[0][1] != 1 {
		t.Errorf("unsorted batches %v", u)
	}
}

// tinyCorpus writes a few lines and tokenizes them with the tiny fixture's tokenizer.
func tinyCorpus(t *testing.T) (*Corpus, string) {
	t.Helper()
	dir := testutil.Fixture("tiny-bert-embeddings")
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lines.txt")
	text := "A man is eating food.\n\nA man is riding a horse on the beach at sunset.\nHi\n" +
		"The quick brown fox jumps over the lazy dog again and again.\nSomeone plays a guitar.\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCorpus(path, tok, 128)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Texts) != 5 || c.Name != "lines" || c.Tokens() < 20 {
		t.Fatalf("corpus: %d texts named %q, %d tokens", len(c.Texts), c.Name, c.Tokens())
	}
	return c, dir
}

// TestRawLoopMatchesInfergo: the baseline computes what Infergo serves (mean pooling and
// normalisation of the same graph), so the comparison is like for like; and every runner
// makes complete passes.
func TestRawLoopMatchesInfergo(t *testing.T) {
	c, dir := tinyCorpus(t)
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	raw, err := NewRawRunner(RawConfig{Graph: filepath.Join(dir, "onnx", "model.onnx"), Batch: 2, Sorted: true, Threads: 1, Callers: 2, Hidden: 32}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	p, err := raw.Pass(context.Background())
	if err != nil || p.Seqs != len(c.Texts) || len(p.Latencies) != 3 {
		t.Fatalf("raw pass: %+v, %v", p, err)
	}
	vecs := raw.Vectors()

	counter := &BatchCounter{}
	mc := ModelConfig{Dir: dir, Opener: env, Workers: 2}
	mc.Sched.Observer = counter
	ctx := context.Background()
	m, err := mc.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range c.Texts {
		got, _, err := m.Embedder.Embed(ctx, []string{text}, pipelines.EmbedOptions{Truncate: true})
		if err != nil {
			t.Fatal(err)
		}
		testutil.AssertClose(t, text, got[0], vecs[i], 1e-5)
	}

	inproc, err := NewInProcessRunner(m, InProcessConfig{Callers: 3, Batch: 2}, c)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := inproc.Pass(ctx); err != nil || p.Seqs != 5 || len(p.Latencies) != 3 {
		t.Fatalf("in-process pass: %+v, %v", p, err)
	}
	srv, err := StartServer(m)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	passes, err := RunHTTP(ctx, srv.URL, HTTPConfig{Clients: 4, Passes: 1, Route: load.RouteTEI}, c)
	if err != nil || len(passes) != 1 || passes[0].Seqs != 5 {
		t.Fatalf("http passes: %+v, %v", passes, err)
	}
	if s := counter.String(); s == "no batches" {
		t.Error("the observer saw no batches")
	}
}

func TestBatchCounter(t *testing.T) {
	var b BatchCounter
	b.Batch(sched.BatchStats{Size: 2, Tokens: 30, PaddedTokens: 40, Inference: 4 * time.Millisecond})
	b.Batch(sched.BatchStats{Size: 4, Tokens: 50, PaddedTokens: 60, Inference: 2 * time.Millisecond})
	if got, want := b.String(), "2 batches, mean size 3.0, padding 20.0%, mean run 3.00 ms, prepare 0.000 ms, finish 0.000 ms, dispatch 0.000 ms"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	b.Reset()
	if got := b.String(); got != "no batches" {
		t.Errorf("after Reset: %q", got)
	}
}

// TestReadCPU: /proc's account of this process agrees with getrusage after real work.
func TestReadCPU(t *testing.T) {
	before := SelfCPU()
	x := 0
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		x++
	}
	self := SelfCPU()
	proc, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self-before < 100*time.Millisecond || x == 0 {
		t.Fatalf("getrusage counted %v for 200 ms of spinning", self-before)
	}
	if d := (proc - self).Abs(); d > 60*time.Millisecond {
		t.Errorf("/proc says %v, getrusage %v", proc, self)
	}
	if _, err := ReadCPU(-1); err == nil {
		t.Error("no error for a missing process")
	}
}
