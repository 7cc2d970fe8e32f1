// Command runexp times one-sequence runs of the benchmark model six ways, interleaved, to find
// where Infergo's single-request run time differs from a bare onnxruntime_go loop
// (bench/RESULTS.md). Run `make bench-model` first.
//
//	go run ./bench/cmd/runexp passages
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	dir := "bench/testdata/model"
	env, err := ort.NewEnvironment("")
	if err != nil {
		return err
	}
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return err
	}
	if len(os.Args) != 2 {
		return errors.New("usage: runexp short|passages")
	}
	corpus := os.Args[1]
	c, err := harness.LoadCorpus(filepath.Join("bench", "testdata", corpus+".txt"), tok, 512)
	if err != nil {
		return err
	}
	graph := filepath.Join(dir, "onnx", "model.onnx")
	n := min(len(c.IDs), 200)

	sess, err := env.Open(context.Background(), graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		return err
	}
	sessMP, err := env.Open(context.Background(), graph, runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, MemPattern: true})
	if err != nil {
		return err
	}
	// A: bare onnxruntime_go, values made once.
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
	type rawIn struct{ in, out []ortgo.Value }
	var raws []rawIn
	var tins [][]runtime.Tensor
	for i := 0; i < n; i++ {
		L := len(c.IDs[i])
		ids, mask, types := make([]int64, L), make([]int64, L), make([]int64, L)
		for p, id := range c.IDs[i] {
			ids[p], mask[p] = int64(id), 1
		}
		sh := ortgo.NewShape(1, int64(L))
		a, err1 := ortgo.NewTensor(sh, ids)
		b, err2 := ortgo.NewTensor(sh, mask)
		t, err3 := ortgo.NewTensor(sh, types)
		o, err4 := ortgo.NewEmptyTensor[float32](ortgo.NewShape(1, int64(L), 384))
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return err
		}
		raws = append(raws, rawIn{[]ortgo.Value{a, b, t}, []ortgo.Value{o}})
		s := []int64{1, int64(L)}
		tins = append(tins, []runtime.Tensor{runtime.NewTensor(s, ids), runtime.NewTensor(s, mask), runtime.NewTensor(s, types)})
	}
	s1, err := sched.New([]runtime.Session{sess}, sched.Config{Workers: 1, MaxBatchSize: 1})
	if err != nil {
		return err
	}
	s2, err := sched.New([]runtime.Session{sess}, sched.Config{Workers: 2, MaxBatchSize: 1})
	if err != nil {
		return err
	}
	seqs := make([]sched.Sequence, n)
	for i := range seqs {
		seqs[i] = sched.Sequence{IDs: c.IDs[i], TypeIDs: make([]int32, len(c.IDs[i]))}
	}
	ctx := context.Background()
	modes := []struct {
		name string
		f    func(i int) error
	}{
		{"A raw ortgo", func(i int) error { return raw.Run(raws[i].in, raws[i].out) }},
		{"B ort.Session engine out", func(i int) error {
			return sess.Run(ctx, tins[i], make([]runtime.Tensor, 1))
		}},
		{"C ort.Session prealloc out", func(i int) error {
			L := len(c.IDs[i])
			return sess.Run(ctx, tins[i], []runtime.Tensor{runtime.NewTensor([]int64{1, int64(L), 384}, make([]float32, L*384))})
		}},
		{"D ort.Session mem-pattern", func(i int) error {
			return sessMP.Run(ctx, tins[i], make([]runtime.Tensor, 1))
		}},
		{"E sched 1 worker", func(i int) error { _, err := s1.Submit(ctx, seqs[i:i+1]); return err }},
		{"F sched 2 workers", func(i int) error { _, err := s2.Submit(ctx, seqs[i:i+1]); return err }},
	}
	res := map[string][]float64{}
	for round := 0; round < 4; round++ {
		for _, m := range modes {
			start := time.Now()
			for i := 0; i < n; i++ {
				if err := m.f(i); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
			}
			if round > 0 {
				res[m.name] = append(res[m.name], float64(time.Since(start).Microseconds())/float64(n)/1000)
			}
		}
	}
	for _, m := range modes {
		v := res[m.name]
		sort.Float64s(v)
		fmt.Printf("%-28s median %.3f ms/run  (%v)\n", m.name, v[len(v)/2], v)
	}
	return nil
}
