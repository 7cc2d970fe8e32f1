package pipelines

import "math"

// float32 arithmetic as numpy does it on float32 arrays, so classification scores equal the
// Python reference's to the last bit or close to it (numpy's own SIMD exp can differ from
// the correctly rounded one by an ulp). The order of additions matters at that level:
// numpy sums a contiguous axis pairwise and a strided axis row by row.

// npSum32 is numpy's sum of a contiguous float32 array (np.add.reduce → pairwise_sum).
func npSum32(a []float32) float32 {
	n := len(a)
	switch {
	case n < 8:
		var res float32
		for _, x := range a {
			res += x
		}
		return res
	case n <= 128: // numpy's PW_BLOCKSIZE
		var r [8]float32
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return npSum32(a[:n2]) + npSum32(a[n2:])
	}
}

// exp32 is exp of a float32, rounded to float32.
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// softmax32 writes softmax(logits) to out as transformers computes it with numpy:
// maxes = max(logits); e = exp(logits - maxes); e / e.sum().
func softmax32(logits, out []float32) {
	m := logits[0]
	for _, x := range logits[1:] {
		if x > m || x != x {
			m = x
		}
	}
	for i, x := range logits {
		out[i] = exp32(x - m)
	}
	s := npSum32(out)
	for i := range out {
		out[i] /= s
	}
}

// sigmoid32 is transformers' 1 / (1 + exp(-x)) on a float32.
func sigmoid32(x float32) float32 {
	return 1 / (1 + exp32(-x))
}

// argmax32 is numpy's argmax: the first maximum (the first NaN, if any).
func argmax32(a []float32) int {
	best := 0
	for i, x := range a {
		if x != x {
			return i
		}
		if x > a[best] {
			best = i
		}
	}
	return best
}

// nanMean32 is np.nanmean of a float32 array: NaNs dropped, the sum as numpy's (pairwise),
// the division by the count done in float64 and rounded back, as numpy's _divide_by_count.
func nanMean32(a []float32) float32 {
	clean := make([]float32, len(a))
	n := 0
	for i, x := range a {
		if x == x {
			clean[i] = x
			n++
		}
	}
	return float32(float64(npSum32(clean)) / float64(n))
}
