package testutil

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// BatchedRun computes the outputs for the inputs at indices idx, in order: one flat
// []float32 per input (logits, an embedding, token rows…), whatever the task.
type BatchedRun func(ctx context.Context, idx []int) ([][]float32, error)

// CheckBatchedMatchesSingle is the batching-correctness check every pipeline shares: it
// runs each of n inputs alone, one call at a time with nothing else in flight, then runs
// them all again from callers concurrent goroutines in random groups of 1–maxGroup inputs
// per call (so the scheduler packs unrelated requests of different lengths into shared,
// padded batches), rounds times, and fails when any output differs from its lone result
// by more than tol.
func CheckBatchedMatchesSingle(t testing.TB, n int, run BatchedRun, callers, maxGroup, rounds int, tol float64) {
	t.Helper()
	ctx := context.Background()
	alone := make([][]float32, n)
	for i := range alone {
		out, err := run(ctx, []int{i})
		if err != nil {
			t.Fatalf("input %d alone: %v", i, err)
		}
		if len(out) != 1 {
			t.Fatalf("input %d alone: %d outputs", i, len(out))
		}
		alone[i] = out[0]
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(c) + 1))
			for k := 0; k < rounds; k++ {
				idx := make([]int, 1+r.Intn(max(maxGroup, 1)))
				for j := range idx {
					idx[j] = r.Intn(n)
				}
				outs, err := run(ctx, idx)
				if err != nil {
					errs <- fmt.Errorf("caller %d group %v: %w", c, idx, err)
					return
				}
				for j, i := range idx {
					if d := MaxAbsDiff(outs[j], alone[i]); d > tol {
						errs <- fmt.Errorf("caller %d: input %d batched differs from alone by %g > %g", c, i, d, tol)
						return
					}
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
