package pipelines

import (
	"fmt"
	"math"

	"github.com/infergo/infergo/models"
)

// pool reduces a sequence's token rows ([tokens × hidden], padding already removed) to one
// vector the way sentence-transformers' Pooling module does with an all-ones mask.
func pool(mode models.Pooling, rows []float32, hidden int) ([]float32, error) {
	if hidden <= 0 || len(rows) == 0 || len(rows)%hidden != 0 {
		return nil, fmt.Errorf("pipelines: pool: %d values are not rows of %d", len(rows), hidden)
	}
	tokens := len(rows) / hidden
	out := make([]float32, hidden)
	switch mode {
	case models.PoolCLS:
		copy(out, rows[:hidden])
	case models.PoolLastToken:
		copy(out, rows[(tokens-1)*hidden:])
	case models.PoolMax:
		copy(out, rows[:hidden])
		for t := 1; t < tokens; t++ {
			for k, v := range rows[t*hidden : (t+1)*hidden] {
				if v > out[k] {
					out[k] = v
				}
			}
		}
	case models.PoolMean, models.PoolMeanSqrt:
		// Accumulate in float64: a long sequence's float32 sum drifts from torch's result.
		sum := make([]float64, hidden)
		for t := 0; t < tokens; t++ {
			for k, v := range rows[t*hidden : (t+1)*hidden] {
				sum[k] += float64(v)
			}
		}
		div := float64(tokens)
		if mode == models.PoolMeanSqrt {
			div = math.Sqrt(div)
		}
		for k := range out {
			out[k] = float32(sum[k] / div)
		}
	default:
		return nil, fmt.Errorf("pipelines: pooling mode %q is not supported", mode)
	}
	return out, nil
}

// normalize scales v to unit L2 norm in place, as torch.nn.functional.normalize does
// (dividing by max(norm, 1e-12)).
func normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	n := math.Max(math.Sqrt(ss), 1e-12)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
}

// cosine returns the cosine similarity of a and b (0 when either is all zeros).
func cosine(a, b []float32) float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return float32(dot / (math.Sqrt(na) * math.Sqrt(nb)))
}
