package sched

import "math"

// Batch planning. A batch costs about what it computes: a fixed cost per model run plus one
// unit per padded token (longest × sequences). Measured on the MiniLM-L6-shaped benchmark
// model with one intra-op thread (bench/RESULTS.md, "cost model"), a run of 1×8 tokens takes
// as long as ~14 tokens of a large batch, so the fixed cost is worth ~6–8 tokens, while
// padding a 10-token query to 30 wastes 20. Taking every queued sequence into one batch,
// as long as it fits the budget, is therefore the wrong default for mixed lengths: the
// planner splits the sort window into runs of similar length whenever the padding saved is
// worth more than the extra runs cost, and sends the run that holds the oldest sequence.

// planner chooses the batch that contains the anchor (the oldest queued sequence) among
// the length-sorted window. It keeps its scratch slices between calls: only the batcher
// goroutine uses it.
type planner struct {
	overhead int // fixed cost of a run, in padded tokens; < 0: one batch takes all that fits
	maxSize  int
	maxTok   int

	prefix, suffix []float64
}

// group returns the range [lo, hi] of sorted positions to batch. lens are the sequence
// lengths in ascending order, anchor is the anchor's position in lens, and cap bounds the
// batch size (at most maxSize). The range always holds the anchor.
//
// Without a fixed cost every split would win, and with an infinite one the planner would
// take all that fits; between the two, an exact dynamic programme over the sorted window
// finds the cheapest partition into contiguous runs (contiguous runs are optimal when a
// run's cost depends only on its size and its longest member), and the run holding the
// anchor is the batch.
func (p *planner) group(lens []int, anchor, cap int) (lo, hi int) {
	cap = max(1, min(cap, p.maxSize))
	if p.overhead < 0 {
		return p.greedy(lens, anchor, cap)
	}
	n := len(lens)
	// A run [i, j] is feasible when it is one sequence, or fits cap and the token budget;
	// its cost is overhead + size × lens[j].
	o := float64(p.overhead)
	fits := func(size, longest int) bool { return size == 1 || (size <= cap && size*longest <= p.maxTok) }

	// prefix[i]: cheapest partition of lens[:i]; suffix[i]: of lens[i:].
	p.prefix = growFloats(p.prefix, n+1)
	p.suffix = growFloats(p.suffix, n+1)
	prefix, suffix := p.prefix, p.suffix
	prefix[0] = 0
	for i := 1; i <= n; i++ {
		best, longest := math.Inf(1), lens[i-1]
		for j := i - 1; j >= 0 && fits(i-j, longest); j-- {
			best = min(best, prefix[j]+o+float64((i-j)*longest))
		}
		prefix[i] = best
	}
	suffix[n] = 0
	for i := n - 1; i >= 0; i-- {
		best := math.Inf(1)
		for j := i; j < n && fits(j-i+1, lens[j]); j++ {
			best = min(best, o+float64((j-i+1)*lens[j])+suffix[j+1])
		}
		suffix[i] = best
	}
	cost := func(i, j int) float64 { return o + float64((j-i+1)*lens[j]) }
	feasible := func(i, j int) bool { return fits(j-i+1, lens[j]) }
	// The run through the anchor: minimise prefix + run + suffix. Ties go to the larger run
	// (fewer runs, less waiting), then to the one reaching shorter sequences.
	bestCost := math.Inf(1)
	lo, hi = anchor, anchor
	for i := anchor; i >= 0 && feasible(i, anchor); i-- {
		for j := anchor; j < n && feasible(i, j); j++ {
			c := p.prefix[i] + cost(i, j) + p.suffix[j+1]
			if c < bestCost-1e-9 || (c < bestCost+1e-9 && j-i > hi-lo) {
				bestCost, lo, hi = c, i, j
			}
		}
	}
	return lo, hi
}

// greedy grows the batch from the anchor towards the nearest lengths while it fits: the
// planner's behaviour when splitting for padding is disabled.
func (p *planner) greedy(lens []int, anchor, cap int) (lo, hi int) {
	lo, hi = anchor, anchor
	longest := lens[anchor]
	for hi-lo+1 < cap {
		size := hi - lo + 1
		left, right := -1, -1
		if lo > 0 && longest*(size+1) <= p.maxTok {
			left = longest - lens[lo-1] // padding the shorter one adds
		}
		if hi+1 < len(lens) && lens[hi+1]*(size+1) <= p.maxTok {
			right = (lens[hi+1] - longest) * size // padding the longer one adds to the rest
		}
		switch {
		case left >= 0 && (right < 0 || left <= right):
			lo--
		case right >= 0:
			hi++
			longest = lens[hi]
		default:
			return lo, hi
		}
	}
	return lo, hi
}

func growFloats(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
