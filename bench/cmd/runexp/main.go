// Command runexp times the benchmark model's runs through each layer of Infergo, interleaved,
// to find where Infergo's run time differs from a bare onnxruntime_go loop (bench/RESULTS.md):
// batches of k sequences of similar length (the corpus sorted by length), run by one or two
// callers on the bare session, on runtime/ort's Session, and through the scheduler. Run
// `make bench-model` first.
//
//	go run ./bench/cmd/runexp -corpus short -k 6
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

func main() {
	corpus := flag.String("corpus", "short", "corpus under bench/testdata")
	k := flag.Int("k", 6, "sequences per batch")
	rounds := flag.Int("rounds", 3, "timed rounds (after one warm-up)")
	flag.Parse()
	if err := run(*corpus, *k, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "runexp:", err)
		os.Exit(1)
	}
}

type batch struct {
	raw    []ortgo.Value // bare session inputs, then its output
	inputs []runtime.Tensor
	output []runtime.Tensor // a Go buffer for the output, made once
	seqs   []sched.Sequence
}

func run(corpus string, k, rounds int) error {
	dir := "bench/testdata/model"
	env, err := ort.NewEnvironment("")
	if err != nil {
		return err
	}
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return err
	}
	c, err := harness.LoadCorpus(filepath.Join("bench", "testdata", corpus+".txt"), tok, 512)
	if err != nil {
		return err
	}
	graph := filepath.Join(dir, "onnx", "model.onnx")
	ctx := context.Background()
	sess, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		return err
	}
	sessMP, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, MemPattern: true})
	if err != nil {
		return err
	}
	sess2, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		return err
	}
	sessNA, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, NoArena: true})
	if err != nil {
		return err
	}
	sessExt, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, Optimization: runtime.OptimizeExtended})
	if err != nil {
		return err
	}
	sessMP2, err := env.Open(ctx, graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, MemPattern: true})
	if err != nil {
		return err
	}
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return err
	}
	if err := errors.Join(opts.SetIntraOpNumThreads(1), opts.SetInterOpNumThreads(1)); err != nil {
		return err
	}
	raw, err := ortgo.NewDynamicAdvancedSession(graph, []string{"input_ids", "attention_mask", "token_type_ids"}, []string{"last_hidden_state"}, opts)
	if err != nil {
		return err
	}
	var batches []batch
	for _, rows := range c.FixedBatches(k, true) {
		L := 0
		for _, r := range rows {
			L = max(L, len(c.IDs[r]))
		}
		n := len(rows)
		ids, mask, types := make([]int64, n*L), make([]int64, n*L), make([]int64, n*L)
		var b batch
		for i, r := range rows {
			for p, id := range c.IDs[r] {
				ids[i*L+p], mask[i*L+p] = int64(id), 1
			}
			b.seqs = append(b.seqs, sched.Sequence{IDs: c.IDs[r], TypeIDs: make([]int32, len(c.IDs[r]))})
		}
		sh := ortgo.NewShape(int64(n), int64(L))
		v1, err1 := ortgo.NewTensor(sh, ids)
		v2, err2 := ortgo.NewTensor(sh, mask)
		v3, err3 := ortgo.NewTensor(sh, types)
		o, err4 := ortgo.NewEmptyTensor[float32](ortgo.NewShape(int64(n), int64(L), 384))
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return err
		}
		b.raw = []ortgo.Value{v1, v2, v3, o}
		s := []int64{int64(n), int64(L)}
		b.inputs = []runtime.Tensor{runtime.NewTensor(s, ids), runtime.NewTensor(s, mask), runtime.NewTensor(s, types)}
		b.output = []runtime.Tensor{runtime.NewTensor([]int64{int64(n), int64(L), 384}, make([]float32, n*L*384))}
		batches = append(batches, b)
	}
	batched, err := sched.New([]runtime.Session{sess}, sched.Config{Workers: 2, MaxBatchSize: k})
	if err != nil {
		return err
	}
	defer batched.Close(ctx)

	// byCaller runs f over every batch from callers goroutines; f learns which caller it is.
	byCaller := func(callers int, f func(caller int, b *batch) error) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, callers)
		for w := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(batches); i = int(next.Add(1) - 1) {
					if err := f(w, &batches[i]); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// parallel runs f over every batch from callers goroutines.
	parallel := func(callers int, f func(b *batch) error) error {
		return byCaller(callers, func(_ int, b *batch) error { return f(b) })
	}
	// on runs a batch on s, ONNX Runtime allocating the output.
	on := func(s runtime.Session) func(b *batch) error {
		return func(b *batch) error { return s.Run(ctx, b.inputs, make([]runtime.Tensor, 1)) }
	}
	// perCaller runs every batch from one goroutine per session, each on its own.
	perCaller := func(sessions ...runtime.Session) error {
		return byCaller(len(sessions), func(c int, b *batch) error { return on(sessions[c])(b) })
	}
	bare := func(b *batch) error { return raw.Run(b.raw[:3], b.raw[3:]) }
	modes := []struct {
		name string
		f    func() error
	}{
		{"bare onnxruntime_go, 1 caller", func() error { return parallel(1, bare) }},
		{"bare onnxruntime_go, 2 callers", func() error { return parallel(2, bare) }},
		{"ort.Session, 1 caller", func() error { return parallel(1, on(sess)) }},
		{"ort.Session, 2 callers", func() error { return parallel(2, on(sess)) }},
		{"ort.Session, Go output buffer, 2 callers", func() error {
			return parallel(2, func(b *batch) error { return sess.Run(ctx, b.inputs, b.output) })
		}},
		{"ort.Session memory pattern, 2 callers", func() error { return parallel(2, on(sessMP)) }},
		{"ort.Session no arena, 2 callers", func() error { return parallel(2, on(sessNA)) }},
		{"ort.Session optimization extended, 1 caller", func() error { return parallel(1, on(sessExt)) }},
		{"ort.Session memory pattern, 1 caller", func() error { return parallel(1, on(sessMP)) }},
		{"ort.Session, a session per caller (2)", func() error { return perCaller(sess, sess2) }},
		{"ort.Session memory pattern, a session per caller (2)", func() error { return perCaller(sessMP, sessMP2) }},
		{"scheduler (2 workers), 2 callers of k", func() error {
			return parallel(2, func(b *batch) error { _, err := batched.Submit(ctx, b.seqs); return err })
		}},
		{"scheduler (2 workers), 32 callers of k", func() error {
			return parallel(32, func(b *batch) error { _, err := batched.Submit(ctx, b.seqs); return err })
		}},
	}
	seqs := len(c.IDs)
	res := map[string][]float64{}
	for round := 0; round <= rounds; round++ {
		for _, m := range modes {
			start := time.Now()
			if err := m.f(); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if round > 0 {
				res[m.name] = append(res[m.name], float64(seqs)/time.Since(start).Seconds())
			}
		}
	}
	fmt.Printf("corpus %s, %d batches of %d sorted by length, seq/s (median of %d rounds):\n", corpus, len(batches), k, rounds)
	for _, m := range modes {
		v := res[m.name]
		sort.Float64s(v)
		fmt.Printf("  %-40s %7.1f  %v\n", m.name, v[len(v)/2], v)
	}
	return nil
}
