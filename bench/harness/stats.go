package harness

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0–100, nearest rank) of sorted latencies.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

// Median returns the median of xs (the mean of the middle two for an even count), or 0.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianPass summarises passes as a configuration's result: the median throughput and the
// median of the passes' p50 latencies.
func MedianPass(passes []Pass) (seqPerSec float64, p50 time.Duration) {
	tp := make([]float64, len(passes))
	lat := make([]float64, len(passes))
	for i, p := range passes {
		tp[i] = p.SeqPerSec()
		lat[i] = float64(p.P50())
	}
	return Median(tp), time.Duration(Median(lat))
}
