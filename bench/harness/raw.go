package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"
)

// The raw loop is the baseline every Infergo figure is divided by. It calls onnxruntime_go
// directly, not through runtime/ort, so that any overhead of our own wrapper shows up in the
// comparison instead of being paid on both sides. The ONNX Runtime environment must already
// be initialised (ort.NewEnvironment does it); the raw loop only opens sessions.

// RawConfig describes one raw-loop configuration.
type RawConfig struct {
	// Graph is the path of model.onnx.
	Graph string
	// Batch is the rows per Run; Sorted sorts the corpus by length before cutting batches.
	Batch  int
	Sorted bool
	// Threads is ORT's intra-op thread count; Callers is how many goroutines call Run at once
	// on one shared session (the peers' "2 callers × 1 thread").
	Threads, Callers int
	// NoSpinning sets session.intra_op.allow_spinning=0.
	NoSpinning bool
	// OwnSessions gives each caller its own session (and thread pool) instead of sharing one.
	OwnSessions bool
	// Passes is the number of timed passes after the warm-up pass (default 3).
	Passes int
	// Hidden is the size of the last_hidden_state rows (default 384, MiniLM-L6).
	Hidden int
}

// Label names the configuration in reports, e.g. "raw b32 2x1".
func (c RawConfig) Label() string {
	s := fmt.Sprintf("raw b%d %dx%d", c.Batch, max(c.Callers, 1), max(c.Threads, 1))
	if !c.Sorted && c.Batch > 1 {
		s += " unsorted"
	}
	if c.NoSpinning {
		s += " nospin"
	}
	if c.OwnSessions {
		s += " own-sessions"
	}
	return s
}

// Pass is the outcome of one timed pass.
type Pass struct {
	Seqs    int
	Elapsed time.Duration
	// Latencies are per call: per batch for the raw loop, per request for Infergo.
	Latencies []time.Duration
}

// SeqPerSec returns the pass's throughput.
func (p Pass) SeqPerSec() float64 { return float64(p.Seqs) / p.Elapsed.Seconds() }

// P50 returns the median call latency.
func (p Pass) P50() time.Duration { return Percentile(p.Latencies, 50) }

// rawBatch is one pre-built batch: input tensors and a preallocated output, so a timed Run
// does nothing but Run and pool.
type rawBatch struct {
	rows      []int // corpus lines, in batch order
	n, seqLen int
	hidden    int
	inputs    []ortgo.Value
	output    *ortgo.Tensor[float32]
	mask      []int64
	pooled    []float32
}

// Runner makes passes over a corpus with one configuration.
type Runner interface {
	// Pass sends the whole corpus once and reports it.
	Pass(ctx context.Context) (Pass, error)
	Close() error
}

// Passes makes one warm-up pass, then n timed passes (default 3).
func Passes(ctx context.Context, r Runner, n int) ([]Pass, error) {
	if n <= 0 {
		n = 3
	}
	var out []Pass
	for p := 0; p <= n; p++ {
		pass, err := r.Pass(ctx)
		if err != nil {
			return nil, err
		}
		if p > 0 {
			out = append(out, pass)
		}
	}
	return out, nil
}

// RawRunner is the raw loop over one corpus.
type RawRunner struct {
	cfg      RawConfig
	sessions []*ortgo.DynamicAdvancedSession
	batches  []*rawBatch
}

// NewRawRunner opens the sessions and builds every batch of c.
func NewRawRunner(cfg RawConfig, c *Corpus) (_ *RawRunner, err error) {
	cfg.Callers = max(cfg.Callers, 1)
	r := &RawRunner{cfg: cfg}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("harness: raw: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(max(cfg.Threads, 1)); err != nil {
		return nil, fmt.Errorf("harness: raw: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("harness: raw: %w", err)
	}
	if cfg.NoSpinning {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("harness: raw: %w", err)
		}
	}
	inNames := []string{"input_ids", "attention_mask", "token_type_ids"}
	nsess := 1
	if cfg.OwnSessions {
		nsess = cfg.Callers
	}
	for range nsess {
		sess, err := ortgo.NewDynamicAdvancedSession(cfg.Graph, inNames, []string{"last_hidden_state"}, opts)
		if err != nil {
			return nil, fmt.Errorf("harness: raw: open %s: %w", cfg.Graph, err)
		}
		r.sessions = append(r.sessions, sess)
	}
	r.batches, err = buildRawBatches(c, cfg.Batch, cfg.Sorted, cfg.Hidden)
	return r, err
}

// Pass implements Runner.
func (r *RawRunner) Pass(context.Context) (Pass, error) {
	return rawPass(r.sessions, r.batches, r.cfg.Callers)
}

// Close implements Runner.
func (r *RawRunner) Close() error {
	for _, b := range r.batches {
		b.destroy()
	}
	var errs []error
	for _, s := range r.sessions {
		errs = append(errs, s.Destroy())
	}
	r.batches, r.sessions = nil, nil
	return errors.Join(errs...)
}

// RunRaw runs the raw loop over c: a warm-up pass, then cfg.Passes timed passes.
func RunRaw(cfg RawConfig, c *Corpus) ([]Pass, error) {
	r, err := NewRawRunner(cfg, c)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return Passes(context.Background(), r, cfg.Passes)
}

func rawPass(sessions []*ortgo.DynamicAdvancedSession, batches []*rawBatch, callers int) (Pass, error) {
	var next atomic.Int64
	lat := make([]time.Duration, len(batches))
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < callers; w++ {
		wg.Add(1)
		sess := sessions[w%len(sessions)]
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batches) {
					return
				}
				b := batches[i]
				t := time.Now()
				if err := sess.Run(b.inputs, []ortgo.Value{b.output}); err != nil {
					errs[w] = fmt.Errorf("harness: raw run %d×%d: %w", b.n, b.seqLen, err)
					return
				}
				b.pool()
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return Pass{}, err
		}
	}
	seqs := 0
	for _, b := range batches {
		seqs += b.n
	}
	sortDurations(lat)
	return Pass{Seqs: seqs, Elapsed: elapsed, Latencies: lat}, nil
}

func buildRawBatches(c *Corpus, size int, sorted bool, hidden int) ([]*rawBatch, error) {
	if hidden <= 0 {
		hidden = 384
	}
	var out []*rawBatch
	for _, rows := range c.FixedBatches(max(size, 1), sorted) {
		L := 0
		for _, r := range rows {
			L = max(L, len(c.IDs[r]))
		}
		n := len(rows)
		ids, mask, types := make([]int64, n*L), make([]int64, n*L), make([]int64, n*L)
		for i, r := range rows {
			for p, id := range c.IDs[r] {
				ids[i*L+p] = int64(id)
				mask[i*L+p] = 1
			}
		}
		b := &rawBatch{rows: rows, n: n, seqLen: L, hidden: hidden, mask: mask, pooled: make([]float32, 0, n*hidden)}
		out = append(out, b)
		shape := ortgo.NewShape(int64(n), int64(L))
		for _, data := range [][]int64{ids, mask, types} {
			v, err := ortgo.NewTensor(shape, data)
			if err != nil {
				return out, fmt.Errorf("harness: raw input: %w", err)
			}
			b.inputs = append(b.inputs, v)
		}
		o, err := ortgo.NewEmptyTensor[float32](ortgo.NewShape(int64(n), int64(L), int64(hidden)))
		if err != nil {
			return out, fmt.Errorf("harness: raw output: %w", err)
		}
		b.output = o
	}
	return out, nil
}

// pool does what every peer does after Run: mean pooling over the attention mask, then L2
// normalisation, into a reused buffer.
func (b *rawBatch) pool() {
	h, hidden := b.output.GetData(), b.hidden
	b.pooled = b.pooled[:0]
	for i := 0; i < b.n; i++ {
		start := len(b.pooled)
		b.pooled = b.pooled[:start+hidden] // capacity n×hidden: no allocation in the loop
		v := b.pooled[start:]
		clear(v)
		cnt := float32(0)
		for p := 0; p < b.seqLen; p++ {
			if b.mask[i*b.seqLen+p] == 0 {
				continue
			}
			cnt++
			row := h[(i*b.seqLen+p)*hidden : (i*b.seqLen+p+1)*hidden]
			for k := range v {
				v[k] += row[k]
			}
		}
		norm := float32(0)
		for k := range v {
			v[k] /= cnt
			norm += v[k] * v[k]
		}
		norm = float32(math.Sqrt(float64(norm)))
		for k := range v {
			v[k] /= norm
		}
	}
}

// Vectors returns the pooled vector of every corpus line from the last pass, for checks.
func (r *RawRunner) Vectors() map[int][]float32 {
	out := map[int][]float32{}
	for _, b := range r.batches {
		for i, row := range b.rows {
			out[row] = b.pooled[i*b.hidden : (i+1)*b.hidden]
		}
	}
	return out
}

func (b *rawBatch) destroy() {
	for _, v := range b.inputs {
		v.Destroy()
	}
	if b.output != nil {
		b.output.Destroy()
	}
}
