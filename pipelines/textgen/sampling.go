package textgen

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling is how the next token is chosen, with transformers' generate() semantics: the
// repetition penalty and the minimum length act on the logits first, then greedy search takes
// the argmax, or sampling applies temperature, top-k and top-p (in that order, as
// transformers' warpers do) and draws from the remaining distribution.
type Sampling struct {
	DoSample bool
	// Temperature divides the logits when sampling (1: off). Must be > 0 when sampling.
	Temperature float64
	// TopK keeps the k most likely tokens when sampling (0: off).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability reaches p when
	// sampling (1: off).
	TopP float64
	// RepetitionPenalty divides positive logits (multiplies negative ones) of every token
	// already in the sequence, prompt included (1: off). Applies to greedy search too.
	RepetitionPenalty float64
	// MinNewTokens forbids the end-of-sequence tokens until this many tokens were generated.
	MinNewTokens int
	// Seed seeds the sequence's random source; the same seed gives the same tokens.
	Seed uint64
}

// sampler chooses tokens for one sequence. It owns scratch space; it is not safe for
// concurrent use (the decode loop uses it from one goroutine).
type sampler struct {
	p    Sampling
	eos  []int32
	rng  *rand.Rand
	idx  []int32  // scratch: candidate token ids
	seen []uint64 // scratch: bitset of ids already penalised this step
}

func newSampler(p Sampling, eos []int32, stream uint64) *sampler {
	return &sampler{p: p, eos: eos, rng: rand.New(rand.NewPCG(p.Seed, stream))}
}

// next picks the token following history (prompt and generated ids) from logits, which it
// may modify. generated is how many tokens were generated so far. It returns the token and
// its log-probability under the processed distribution.
func (s *sampler) next(logits []float32, history []int32, generated int) (int32, float32) {
	if pen := s.p.RepetitionPenalty; pen != 1 && pen > 0 {
		s.penalise(logits, history, float32(pen))
	}
	if generated < s.p.MinNewTokens {
		for _, e := range s.eos {
			if int(e) < len(logits) {
				logits[e] = float32(math.Inf(-1))
			}
		}
	}
	if !s.p.DoSample {
		best := argmax(logits)
		return int32(best), logProb(logits, best)
	}
	if t := s.p.Temperature; t != 1 && t > 0 {
		inv := float32(1 / t)
		for i := range logits {
			logits[i] *= inv
		}
	}
	cand := s.candidates(logits)
	// Softmax over the candidates (float64 for a stable sum), then draw.
	m := math.Inf(-1)
	for _, id := range cand {
		m = max(m, float64(logits[id]))
	}
	sum := 0.0
	for _, id := range cand {
		sum += math.Exp(float64(logits[id]) - m)
	}
	u := s.rng.Float64() * sum
	pick := cand[len(cand)-1]
	acc := 0.0
	for _, id := range cand {
		acc += math.Exp(float64(logits[id]) - m)
		if u < acc {
			pick = id
			break
		}
	}
	lp := float64(logits[pick]) - m - math.Log(sum)
	return pick, float32(lp)
}

// penalise applies transformers' RepetitionPenaltyLogitsProcessor once per distinct id.
func (s *sampler) penalise(logits []float32, history []int32, pen float32) {
	words := (len(logits) + 63) / 64
	if cap(s.seen) < words {
		s.seen = make([]uint64, words)
	}
	seen := s.seen[:words]
	clear(seen)
	for _, id := range history {
		if id < 0 || int(id) >= len(logits) || seen[id/64]&(1<<(id%64)) != 0 {
			continue
		}
		seen[id/64] |= 1 << (id % 64)
		if l := logits[id]; l < 0 {
			logits[id] = l * pen
		} else {
			logits[id] = l / pen
		}
	}
}

// candidates applies top-k and top-p and returns the ids left, most likely first (ties by
// lower id). Filtered ids are those transformers would set to -inf.
func (s *sampler) candidates(logits []float32) []int32 {
	if cap(s.idx) < len(logits) {
		s.idx = make([]int32, len(logits))
	}
	idx := s.idx[:len(logits)]
	n := 0
	for i, l := range logits {
		if !math.IsInf(float64(l), -1) {
			idx[n] = int32(i)
			n++
		}
	}
	idx = idx[:n]
	if n == 0 {
		return append(idx, int32(argmax(logits)))
	}
	slices.SortFunc(idx, func(a, b int32) int {
		if logits[a] != logits[b] {
			if logits[a] > logits[b] {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	if k := s.p.TopK; k > 0 && k < len(idx) {
		// Keep every token whose logit is at least the k-th largest (torch.topk threshold).
		kth := logits[idx[k-1]]
		end := k
		for end < len(idx) && logits[idx[end]] >= kth {
			end++
		}
		idx = idx[:end]
	}
	if p := s.p.TopP; p < 1 && len(idx) > 1 {
		// transformers sorts ascending and drops tokens whose cumulative probability is
		// <= 1-p, always keeping the most likely one: equivalently, walking from the least
		// likely, drop while the running mass stays within 1-p.
		m := float64(logits[idx[0]])
		sum := 0.0
		for _, id := range idx {
			sum += math.Exp(float64(logits[id]) - m)
		}
		limit := (1 - p) * sum
		acc := 0.0
		end := len(idx)
		for end > 1 {
			acc += math.Exp(float64(logits[idx[end-1]]) - m)
			if acc > limit {
				break
			}
			end--
		}
		idx = idx[:end]
	}
	return idx
}

// argmax returns the index of the largest value, the first one on ties (torch.argmax).
func argmax(v []float32) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// logProb returns log softmax(v)[i].
func logProb(v []float32, i int) float32 {
	m := float64(v[argmax(v)])
	sum := 0.0
	for _, x := range v {
		sum += math.Exp(float64(x) - m)
	}
	return float32(float64(v[i]) - m - math.Log(sum))
}
