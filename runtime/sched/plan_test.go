package sched

import (
	"context"
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/runtime/fake"
)

// bestPartition returns the cheapest cost of splitting lens (sorted) into contiguous runs,
// by brute force, optionally forcing [lo, hi] to be one of the runs (lo < 0: free).
func bestPartition(p *planner, lens []int, cap, lo, hi int) float64 {
	n := len(lens)
	best := math.Inf(1)
	for mask := 0; mask < 1<<(n-1); mask++ { // bit i set: a run ends after position i
		total, start, ok := 0.0, 0, true
		for i := 0; i < n && ok; i++ {
			if i < n-1 && mask&(1<<i) == 0 {
				continue
			}
			size := i - start + 1
			if size > 1 && (size > cap || size*lens[i] > p.maxTok) {
				ok = false
			}
			if lo >= 0 && ((start < lo && i >= lo) || (start <= hi && i > hi) || (start > lo && start <= hi)) {
				ok = false // [lo, hi] is not one run
			}
			total += float64(p.overhead + size*lens[i])
			start = i + 1
		}
		if ok {
			best = min(best, total)
		}
	}
	return best
}

// TestPlannerIsOptimal: the batch the planner picks is a run of a cheapest partition of the
// window, holds the anchor, and fits both budgets.
func TestPlannerIsOptimal(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for iter := 0; iter < 3000; iter++ {
		n := 1 + r.Intn(9)
		lens := make([]int, n)
		for i := range lens {
			lens[i] = 1 + r.Intn(60)
		}
		slices.Sort(lens)
		p := &planner{overhead: r.Intn(20), maxSize: 1 + r.Intn(8), maxTok: 20 + r.Intn(200)}
		anchor, cap := r.Intn(n), 1+r.Intn(9)
		lo, hi := p.group(lens, anchor, cap)
		if lo > anchor || hi < anchor {
			t.Fatalf("lens %v anchor %d: batch [%d,%d] misses the anchor", lens, anchor, lo, hi)
		}
		size, effCap := hi-lo+1, min(cap, p.maxSize)
		if size > 1 && (size > effCap || size*lens[hi] > p.maxTok) {
			t.Fatalf("lens %v: batch [%d,%d] breaks the budgets (cap %d, tokens %d)", lens, lo, hi, effCap, p.maxTok)
		}
		want := bestPartition(p, lens, effCap, -1, -1)
		got := bestPartition(p, lens, effCap, lo, hi)
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("lens %v anchor %d overhead %d cap %d tok %d: batch [%d,%d] leads to cost %v, optimum %v",
				lens, anchor, p.overhead, effCap, p.maxTok, lo, hi, got, want)
		}
	}
}

func TestPlannerSplitsMixedLengths(t *testing.T) {
	p := &planner{overhead: 8, maxSize: 128, maxTok: 8192}
	// Two clusters: padding the short ones to 30 costs far more than a second run.
	lens := []int{9, 10, 10, 11, 12, 28, 29, 30, 30}
	if lo, hi := p.group(lens, 0, 128); lo != 0 || hi != 4 {
		t.Errorf("short anchor: batch [%d,%d], want [0,4]", lo, hi)
	}
	if lo, hi := p.group(lens, 7, 128); lo != 5 || hi != 8 {
		t.Errorf("long anchor: batch [%d,%d], want [5,8]", lo, hi)
	}
	// Equal lengths stay together; the share cap splits them.
	same := []int{16, 16, 16, 16, 16, 16}
	if lo, hi := p.group(same, 2, 128); lo != 0 || hi != 5 {
		t.Errorf("equal lengths: batch [%d,%d], want all", lo, hi)
	}
	if lo, hi := p.group(same, 2, 3); hi-lo+1 != 3 || lo > 2 || hi < 2 {
		t.Errorf("capped: batch [%d,%d], want 3 around the anchor", lo, hi)
	}
	// Negative overhead: the old greedy behaviour, everything that fits.
	g := &planner{overhead: -1, maxSize: 128, maxTok: 8192}
	if lo, hi := g.group(lens, 0, 128); lo != 0 || hi != len(lens)-1 {
		t.Errorf("greedy: batch [%d,%d], want all", lo, hi)
	}
}

func BenchmarkPlanner(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	lens := make([]int, 512)
	for i := range lens {
		lens[i] = 8 + r.Intn(25)
	}
	slices.Sort(lens)
	p := &planner{overhead: 8, maxSize: 128, maxTok: 8192}
	b.ReportAllocs()
	for b.Loop() {
		p.group(lens, 200, 128)
	}
}

// TestLongInputsNotStarved: under a steady stream of short sequences of mixed lengths, long
// sequences arriving now and then are each served within a few batches: the planner may
// keep them apart from the short ones, but the oldest sequence always anchors the next
// batch, so a long one waits at most for the batches already ahead of it.
func TestLongInputsNotStarved(t *testing.T) {
	enc := &fake.Encoder{Hidden: hidden, Delay: 500 * time.Microsecond}
	s := newSched(t, Config{MaxBatchTokens: 256, MaxBatchSize: 32}, enc, enc)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(c)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Submit(context.Background(), []Sequence{randomSeq(r, 2, 12)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(c)
	}
	time.Sleep(20 * time.Millisecond)
	r := rand.New(rand.NewSource(99))
	var worst time.Duration
	for k := 0; k < 10; k++ {
		long := randomSeq(r, 150, 250)
		res, err := s.Submit(context.Background(), []Sequence{long})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, long, res[0])
		worst = max(worst, res[0].Queue)
	}
	close(stop)
	wg.Wait()
	// 16 short clients keep at most 16 sequences ahead of a long one: a handful of batches
	// of 0.5 ms each. Allow generous slack for -race and a loaded machine.
	if worst > 500*time.Millisecond {
		t.Errorf("a long sequence waited %v behind short ones", worst)
	}
}
