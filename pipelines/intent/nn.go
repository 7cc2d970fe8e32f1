package intent

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// The classifier heads are tiny dense networks trained on CPU in pure Go. Every kernel below
// is parallel over an index whose result is computed by one goroutine in a fixed order, so a
// run gives bit-identical weights whatever the number of cores.

// dense is a fully connected layer, out = W·in + b, with W row-major [out][in].
type dense struct {
	in, out int
	w, b    []float32
}

// mlp is a stack of dense layers with ReLU between them (one layer: logistic regression).
type mlp struct {
	layers []dense
}

func newMLP(sizes []int, rng *rand.Rand) *mlp {
	n := &mlp{}
	for i := 0; i+1 < len(sizes); i++ {
		l := dense{in: sizes[i], out: sizes[i+1], w: make([]float32, sizes[i]*sizes[i+1]), b: make([]float32, sizes[i+1])}
		// Logistic regression starts at zero (the problem is convex); hidden layers need
		// symmetry breaking: He-uniform for the ReLU that follows.
		if len(sizes) > 2 && rng != nil {
			limit := math.Sqrt(6 / float64(l.in))
			for j := range l.w {
				l.w[j] = float32((2*rng.Float64() - 1) * limit)
			}
		}
		n.layers = append(n.layers, l)
	}
	return n
}

func (n *mlp) clone() *mlp {
	c := &mlp{layers: make([]dense, len(n.layers))}
	for i, l := range n.layers {
		c.layers[i] = dense{in: l.in, out: l.out, w: append([]float32(nil), l.w...), b: append([]float32(nil), l.b...)}
	}
	return c
}

func (n *mlp) inputs() int  { return n.layers[0].in }
func (n *mlp) outputs() int { return n.layers[len(n.layers)-1].out }

// params lists the trainable tensors in a fixed order (weights, then bias, per layer).
func (n *mlp) params() [][]float32 {
	var p [][]float32
	for i := range n.layers {
		p = append(p, n.layers[i].w, n.layers[i].b)
	}
	return p
}

// scratch holds the activations and gradients of one batch, reused across batches.
type scratch struct {
	rows  int
	acts  [][]float32 // acts[0] is the input batch; acts[i+1] the output of layer i
	grads [][]float32 // gradient w.r.t. acts[i+1]
	pg    [][]float32 // parameter gradients, same order as params()
}

func (n *mlp) newScratch(rows int) *scratch {
	s := &scratch{rows: rows, acts: [][]float32{make([]float32, rows*n.inputs())}}
	for _, l := range n.layers {
		s.acts = append(s.acts, make([]float32, rows*l.out))
		s.grads = append(s.grads, make([]float32, rows*l.out))
		s.pg = append(s.pg, make([]float32, len(l.w)), make([]float32, len(l.b)))
	}
	return s
}

// forward runs rows inputs (already in s.acts[0]) through the network and returns the logits.
func (n *mlp) forward(s *scratch, rows int) []float32 {
	for i, l := range n.layers {
		in, out := s.acts[i][:rows*l.in], s.acts[i+1][:rows*l.out]
		relu := i+1 < len(n.layers)
		parallelFor(rows, rows*l.in*l.out, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				x := in[r*l.in : (r+1)*l.in]
				o := out[r*l.out : (r+1)*l.out]
				for k := range o {
					v := l.b[k] + dot(l.w[k*l.in:(k+1)*l.in], x)
					if relu && v < 0 {
						v = 0
					}
					o[k] = v
				}
			}
		})
	}
	return s.acts[len(n.layers)][:rows*n.outputs()]
}

// backward takes the loss gradient w.r.t. the logits in s.grads[last] and fills s.pg.
func (n *mlp) backward(s *scratch, rows int) {
	for i := len(n.layers) - 1; i >= 0; i-- {
		l := n.layers[i]
		g := s.grads[i][:rows*l.out]
		in := s.acts[i][:rows*l.in]
		dw, db := s.pg[2*i], s.pg[2*i+1]
		// dW[k] = Σ_r g[r][k]·in[r], one goroutine per row block of W.
		parallelFor(l.out, rows*l.in*l.out, func(lo, hi int) {
			for k := lo; k < hi; k++ {
				w := dw[k*l.in : (k+1)*l.in]
				clear(w)
				var bsum float32
				for r := 0; r < rows; r++ {
					gk := g[r*l.out+k]
					if gk != 0 {
						axpy(gk, in[r*l.in:(r+1)*l.in], w)
						bsum += gk
					}
				}
				db[k] = bsum
			}
		})
		if i == 0 {
			break
		}
		// Gradient w.r.t. this layer's input, through the previous layer's ReLU.
		gin := s.grads[i-1][:rows*l.in]
		parallelFor(rows, rows*l.in*l.out, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				d := gin[r*l.in : (r+1)*l.in]
				clear(d)
				gr := g[r*l.out : (r+1)*l.out]
				for k, gk := range gr {
					if gk != 0 {
						axpy(gk, l.w[k*l.in:(k+1)*l.in], d)
					}
				}
				a := in[r*l.in : (r+1)*l.in]
				for j := range d {
					if a[j] <= 0 {
						d[j] = 0
					}
				}
			}
		})
	}
}

// softmaxXent turns logits into probabilities in place, writes the gradient of the mean
// cross-entropy into grad (when non-nil) and returns the summed loss.
func softmaxXent(logits []float32, labels []int, k int, grad []float32) float64 {
	var loss float64
	scale := float32(1) / float32(len(labels))
	for r, y := range labels {
		p := logits[r*k : (r+1)*k]
		softmax(p)
		loss -= math.Log(math.Max(float64(p[y]), 1e-12))
		if grad != nil {
			g := grad[r*k : (r+1)*k]
			for j := range g {
				g[j] = p[j] * scale
			}
			g[y] -= scale
		}
	}
	return loss
}

// softmax replaces v by its softmax, stable against large logits.
func softmax(v []float32) {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range v {
		v[i] *= inv
	}
}

// adam is the Adam optimiser with a classic L2 penalty on weights (not biases).
type adam struct {
	lr, l2       float64
	b1, b2, eps  float64
	step         int
	m, v         [][]float32
	weightParams []bool
}

func newAdam(n *mlp, lr, l2 float64) *adam {
	a := &adam{lr: lr, l2: l2, b1: 0.9, b2: 0.999, eps: 1e-8}
	for i, p := range n.params() {
		a.m = append(a.m, make([]float32, len(p)))
		a.v = append(a.v, make([]float32, len(p)))
		a.weightParams = append(a.weightParams, i%2 == 0)
	}
	return a
}

func (a *adam) update(params, grads [][]float32) {
	a.step++
	c1 := 1 - math.Pow(a.b1, float64(a.step))
	c2 := 1 - math.Pow(a.b2, float64(a.step))
	lr := float32(a.lr * math.Sqrt(c2) / c1)
	b1, b2, eps, l2 := float32(a.b1), float32(a.b2), float32(a.eps), float32(a.l2)
	for i, p := range params {
		g, m, v := grads[i], a.m[i], a.v[i]
		decay := a.weightParams[i] && l2 != 0
		for j := range p {
			gj := g[j]
			if decay {
				gj += l2 * p[j]
			}
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			p[j] -= lr * m[j] / (float32(math.Sqrt(float64(v[j]))) + eps)
		}
	}
}

// l2Penalty returns ½·λ·Σw² over the weights, the regulariser's share of the loss.
func (n *mlp) l2Penalty(l2 float64) float64 {
	var s float64
	for _, l := range n.layers {
		for _, w := range l.w {
			s += float64(w) * float64(w)
		}
	}
	return 0.5 * l2 * s
}

// parallelMinWork is the multiply-adds below which a kernel runs on the calling goroutine.
const parallelMinWork = 1 << 16

// parallelFor splits [0, n) into contiguous blocks across GOMAXPROCS goroutines when the work
// (multiply-adds) is large enough to pay for them.
func parallelFor(n, work int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || n < 2 || work < parallelMinWork {
		fn(0, n)
		return
	}
	workers = min(workers, n)
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	var panicked atomic.Value
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			// Re-raised on the calling goroutine, where the RPC's recovery can see it.
			defer func() {
				if r := recover(); r != nil {
					panicked.CompareAndSwap(nil, fmt.Sprintf("%v\n%s", r, debug.Stack()))
				}
			}()
			fn(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	fn(0, min(chunk, n))
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(p)
	}
}

// dot returns Σ a[i]·b[i]. Eight independent accumulators let the CPU overlap the adds, and
// re-slicing by eight lets the compiler drop the bounds checks in the loop.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for len(a) >= 8 {
		x, y := a[:8:8], b[:8:8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
		a, b = a[8:], b[8:]
	}
	for i, x := range a {
		s0 += x * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// axpy computes y += a·x.
func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for len(x) >= 8 {
		u, v := x[:8:8], y[:8:8]
		v[0] += a * u[0]
		v[1] += a * u[1]
		v[2] += a * u[2]
		v[3] += a * u[3]
		v[4] += a * u[4]
		v[5] += a * u[5]
		v[6] += a * u[6]
		v[7] += a * u[7]
		x, y = x[8:], y[8:]
	}
	for i, u := range x {
		y[i] += a * u
	}
}
