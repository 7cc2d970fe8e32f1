// Package textgen is the model side of text generation for decoder-only models (GPT-2 and
// friends) in optimum's ONNX layouts: a sched.Decoder that runs prompts and decode steps with
// a KV cache shared by the live batch, and the token choice (greedy search or sampling).
// Text (detokenization, stop sequences) is handled by the caller, outside the decode loop.
package textgen

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
)

// Layout is how a graph takes its past.
type Layout uint8

// Graph layouts (hf-inference-api §5.9).
const (
	// NoCache: input_ids, attention_mask (and maybe position_ids) → logits over all
	// positions; every step recomputes the whole sequence (model.onnx / decoder_model.onnx).
	NoCache Layout = iota
	// WithPast: past_key_values.{i}.key|value in, present.{i}.key|value out
	// (decoder_with_past_model.onnx); the first step feeds empty past tensors.
	WithPast
	// Merged: WithPast plus use_cache_branch (decoder_model_merged.onnx): false on the
	// prompt step, with empty past tensors, true afterwards.
	Merged
)

func (l Layout) String() string {
	switch l {
	case WithPast:
		return "with-past"
	case Merged:
		return "merged"
	}
	return "no-cache"
}

// Decoder runs a decoder-only graph for a sched.DecodeLoop. Every sched.Seq it is given must
// carry a *Sequence as State.
type Decoder struct {
	sess   runtime.Session
	layout Layout
	vocab  int

	inIDs, inMask, inPos, inUseCache int
	inPast, outPresent               []int // per tensor (2 × layer: key, value)
	outLogits                        int
	heads, dim                       int

	parallelAt int // rows × vocab from which token choices run in parallel

	kv   *kvBatch    // cached layouts: the live batch
	rows []*Sequence // cached layouts: row → sequence; no-cache: live sequences

	// Scratch reused across calls.
	ins, outs     []runtime.Tensor
	ids, mask     []int64
	pos           []int64
	logits        []float32
	prefillKV     [][]float32
	emptyPast     []float32 // zero-length past for prompt steps
	useCacheTrue  []bool
	useCacheFalse []bool
}

// Sequence is the per-sequence state a Decoder needs (sched.Seq.State).
type Sequence struct {
	ids      []int32 // prompt then generated tokens
	prompt   int
	sampler  *sampler
	eos      []int32
	row      int // row in the batch, -1 when not held
	kvLen    int // real positions in the KV cache
	finished bool
}

// NewSequence prepares a sequence for prompt (token ids, not empty). eos lists the ids that
// end it; stream distinguishes sequences that share a seed (num_return_sequences).
func NewSequence(prompt []int32, s Sampling, eos []int32, stream uint64) *Sequence {
	return &Sequence{
		ids:     append(make([]int32, 0, len(prompt)+16), prompt...),
		prompt:  len(prompt),
		sampler: newSampler(s, eos, stream),
		eos:     eos,
		row:     -1,
	}
}

// Generated returns the tokens generated so far (only meaningful once the sequence ended).
func (q *Sequence) Generated() []int32 { return q.ids[q.prompt:] }

// NewDecoder inspects sess's inputs and outputs and picks the layout. heads and headDim are
// used when the graph leaves the past dimensions symbolic (0: take them from the graph).
func NewDecoder(sess runtime.Session, heads, headDim int) (*Decoder, error) {
	info := sess.Info()
	d := &Decoder{
		sess: sess, inIDs: info.Input("input_ids"), inMask: info.Input("attention_mask"),
		inPos: info.Input("position_ids"), inUseCache: info.Input("use_cache_branch"),
		outLogits: info.Output("logits"), parallelAt: parallelFloats,
	}
	if d.inIDs < 0 || d.outLogits < 0 {
		return nil, errors.New("textgen: the graph needs an input_ids input and a logits output")
	}
	if lg := info.Outputs[d.outLogits]; lg.DType != runtime.Float32 || len(lg.Shape) != 3 || lg.Shape[2] <= 0 {
		return nil, fmt.Errorf("textgen: logits is %s%v, want float32 [batch, seq, vocab]", lg.DType, lg.Shape)
	} else {
		d.vocab = int(lg.Shape[2])
	}
	for i := 0; ; i++ {
		k := info.Input("past_key_values." + strconv.Itoa(i) + ".key")
		v := info.Input("past_key_values." + strconv.Itoa(i) + ".value")
		if k < 0 || v < 0 {
			break
		}
		pk := info.Output("present." + strconv.Itoa(i) + ".key")
		pv := info.Output("present." + strconv.Itoa(i) + ".value")
		if pk < 0 || pv < 0 {
			return nil, fmt.Errorf("textgen: past_key_values.%d has no present.%d output", i, i)
		}
		d.inPast = append(d.inPast, k, v)
		d.outPresent = append(d.outPresent, pk, pv)
	}
	if d.inUseCache >= 0 && info.Inputs[d.inUseCache].DType != runtime.Bool {
		return nil, fmt.Errorf("textgen: use_cache_branch is %s, want bool", info.Inputs[d.inUseCache].DType)
	}
	switch {
	case len(d.inPast) == 0:
		d.layout = NoCache
	case d.inUseCache >= 0:
		d.layout = Merged
	default:
		d.layout = WithPast
	}
	if d.layout != NoCache {
		shape := info.Inputs[d.inPast[0]].Shape
		if info.Inputs[d.inPast[0]].DType != runtime.Float32 || len(shape) != 4 {
			return nil, fmt.Errorf("textgen: past_key_values.0.key is %s%v, want float32 [batch, heads, past, head_dim]", info.Inputs[d.inPast[0]].DType, shape)
		}
		if shape[1] > 0 {
			heads = int(shape[1])
		}
		if shape[3] > 0 {
			headDim = int(shape[3])
		}
		if heads <= 0 || headDim <= 0 {
			return nil, errors.New("textgen: cannot tell the number of heads and the head size")
		}
		d.heads, d.dim = heads, headDim
		d.kv = newKVBatch(len(d.inPast)/2, heads, headDim)
		d.prefillKV = make([][]float32, len(d.inPast))
		d.useCacheTrue, d.useCacheFalse = []bool{true}, []bool{false}
		d.emptyPast = make([]float32, 0)
	}
	d.ins = make([]runtime.Tensor, len(info.Inputs))
	d.outs = make([]runtime.Tensor, len(info.Outputs))
	return d, nil
}

// Layout returns the graph's layout.
func (d *Decoder) Layout() Layout { return d.layout }

// Vocab returns the size of the logits' last dimension.
func (d *Decoder) Vocab() int { return d.vocab }

// BytesPerPosition is the KV-cache memory one sequence position takes (0 without a cache).
func (d *Decoder) BytesPerPosition() int {
	return len(d.inPast) * d.heads * d.dim * 4
}

// KVStats reports the floats copied to manage the KV cache and the buffer allocations made,
// for benchmarks (only read it while the loop is idle or from the loop goroutine).
func (d *Decoder) KVStats() (copied, allocs int64) {
	if d.kv == nil {
		return 0, 0
	}
	return d.kv.copiedFloats, d.kv.reallocations
}

var _ sched.Decoder = (*Decoder)(nil)

func state(s *sched.Seq) *Sequence { return s.State.(*Sequence) }

// Prefill implements sched.Decoder. Joiners run in groups of equal prompt length, so no
// prompt is padded and each one's first token is exactly what it gets alone.
func (d *Decoder) Prefill(ctx context.Context, join []*sched.Seq) error {
	for _, g := range groupByLen(join, func(q *Sequence) int { return len(q.ids) }) {
		if err := d.prefillGroup(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) prefillGroup(ctx context.Context, g []*sched.Seq) error {
	n, l := len(g), len(state(g[0]).ids)
	d.ids, d.mask, d.pos = grow(d.ids, n*l), grow(d.mask, n*l), grow(d.pos, n*l)
	for i, s := range g {
		copyIDs(d.ids[i*l:(i+1)*l], state(s).ids)
	}
	for i := range d.mask {
		d.mask[i] = 1
		d.pos[i] = int64(i % l)
	}
	shape := []int64{int64(n), int64(l)}
	d.setCommon(shape, shape, shape)
	if d.layout != NoCache {
		empty := []int64{int64(n), int64(d.heads), 0, int64(d.dim)}
		present := []int64{int64(n), int64(d.heads), int64(l), int64(d.dim)}
		for t := range d.inPast {
			d.ins[d.inPast[t]] = runtime.Tensor{Shape: empty, Data: d.emptyPast}
			d.prefillKV[t] = grow(d.prefillKV[t], n*d.kv.rowSize(l))
			d.outs[d.outPresent[t]] = runtime.Tensor{Shape: present, Data: d.prefillKV[t]}
		}
		if d.layout == Merged {
			d.ins[d.inUseCache] = runtime.Tensor{Shape: []int64{1}, Data: d.useCacheFalse}
		}
	}
	logits, err := d.run(ctx, n, l)
	if err != nil {
		return err
	}
	keep := 0
	for i, s := range g {
		d.choose(s, logits[(i*l+l-1)*d.vocab:][:d.vocab])
		if d.layout == NoCache {
			d.rows = append(d.rows, state(s))
			continue
		}
		if !d.done(s) {
			keep++
		}
	}
	if d.layout == NoCache || keep == 0 {
		return nil
	}
	if keep < n {
		// Sequences already finished by their first token never join the batch.
		kept := 0
		for i, s := range g {
			if d.done(s) {
				continue
			}
			if kept != i {
				for t := range d.prefillKV {
					sz := d.kv.rowSize(l)
					copy(d.prefillKV[t][kept*sz:(kept+1)*sz], d.prefillKV[t][i*sz:(i+1)*sz])
				}
			}
			kept++
		}
	}
	first := d.kv.add(d.prefillKV, keep, l)
	for _, s := range g {
		if q := state(s); !d.done(s) {
			q.row, q.kvLen = first, l
			first++
			d.rows = append(d.rows, q)
		}
	}
	return nil
}

// done reports whether s will leave after this call (end of sequence or its last step).
func (d *Decoder) done(s *sched.Seq) bool {
	return state(s).finished || (s.MaxSteps > 0 && s.Steps() >= s.MaxSteps)
}

// Step implements sched.Decoder.
func (d *Decoder) Step(ctx context.Context, live []*sched.Seq) error {
	if d.layout == NoCache {
		return d.stepNoCache(ctx, live)
	}
	b, p := d.kv.rows, d.kv.past
	if b != len(live) {
		return fmt.Errorf("textgen: %d live sequences but %d batch rows", len(live), b)
	}
	d.ids, d.pos, d.mask = grow(d.ids, b), grow(d.pos, b), grow(d.mask, b*(p+1))
	for r, q := range d.rows {
		d.ids[r] = int64(q.ids[len(q.ids)-1])
		d.pos[r] = int64(q.kvLen)
		m := d.mask[r*(p+1) : (r+1)*(p+1)]
		pad := p - q.kvLen
		clear(m[:pad])
		for i := pad; i < len(m); i++ {
			m[i] = 1
		}
	}
	col := []int64{int64(b), 1}
	d.setCommon(col, []int64{int64(b), int64(p + 1)}, col)
	past := []int64{int64(b), int64(d.heads), int64(p), int64(d.dim)}
	present := []int64{int64(b), int64(d.heads), int64(p + 1), int64(d.dim)}
	for t := range d.inPast {
		d.ins[d.inPast[t]] = runtime.Tensor{Shape: past, Data: d.kv.pastData(t)}
		d.outs[d.outPresent[t]] = runtime.Tensor{Shape: present, Data: d.kv.presentData(t)}
	}
	if d.layout == Merged {
		d.ins[d.inUseCache] = runtime.Tensor{Shape: []int64{1}, Data: d.useCacheTrue}
	}
	logits, err := d.run(ctx, b, 1)
	if err != nil {
		return err
	}
	d.kv.advance()
	d.chooseAll(live, func(s *sched.Seq) []float32 {
		q := state(s)
		q.kvLen++
		return logits[q.row*d.vocab:][:d.vocab]
	})
	return nil
}

// parallelFloats is the logits volume (rows × vocab) from which a step's token choices are
// spread over all CPUs: a 50k vocabulary costs ~0.3 ms per row (softmax for the logprob,
// top-k/p sorting), which would otherwise serialise the whole batch while the CPUs that ran
// the model sit idle.
const parallelFloats = 1 << 16

// chooseAll picks the next token of every sequence; row returns a sequence's logits. Each
// sequence is handled by exactly one goroutine (its sampler, ids and stream are its own).
func (d *Decoder) chooseAll(live []*sched.Seq, row func(*sched.Seq) []float32) {
	workers := min(goruntime.GOMAXPROCS(0), len(live))
	if workers < 2 || len(live)*d.vocab < d.parallelAt {
		for _, s := range live {
			d.choose(s, row(s))
		}
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(live); i += workers {
				d.choose(live[i], row(live[i]))
			}
		}()
	}
	wg.Wait()
}

// stepNoCache recomputes every live sequence, in groups of equal length: these graphs may
// derive positions from the sequence index rather than the mask, so rows are never padded.
func (d *Decoder) stepNoCache(ctx context.Context, live []*sched.Seq) error {
	for _, g := range groupByLen(live, func(q *Sequence) int { return len(q.ids) }) {
		n, l := len(g), len(state(g[0]).ids)
		d.ids, d.mask, d.pos = grow(d.ids, n*l), grow(d.mask, n*l), grow(d.pos, n*l)
		for i, s := range g {
			copyIDs(d.ids[i*l:(i+1)*l], state(s).ids)
		}
		for i := range d.mask {
			d.mask[i], d.pos[i] = 1, int64(i%l)
		}
		shape := []int64{int64(n), int64(l)}
		d.setCommon(shape, shape, shape)
		logits, err := d.run(ctx, n, l)
		if err != nil {
			return err
		}
		for i, s := range g {
			d.choose(s, logits[(i*l+l-1)*d.vocab:][:d.vocab])
		}
	}
	return nil
}

// setCommon binds input_ids, attention_mask and position_ids (those the graph has).
func (d *Decoder) setCommon(idShape, maskShape, posShape []int64) {
	d.ins[d.inIDs] = runtime.Tensor{Shape: idShape, Data: d.ids[:runtime.Elements(idShape)]}
	if d.inMask >= 0 {
		d.ins[d.inMask] = runtime.Tensor{Shape: maskShape, Data: d.mask[:runtime.Elements(maskShape)]}
	}
	if d.inPos >= 0 {
		d.ins[d.inPos] = runtime.Tensor{Shape: posShape, Data: d.pos[:runtime.Elements(posShape)]}
	}
}

// run executes the graph with logits written into reused scratch of n × l × vocab.
func (d *Decoder) run(ctx context.Context, n, l int) ([]float32, error) {
	d.logits = grow(d.logits, n*l*d.vocab)
	d.outs[d.outLogits] = runtime.Tensor{Shape: []int64{int64(n), int64(l), int64(d.vocab)}, Data: d.logits}
	for i := range d.outs {
		if d.outs[i].Data == nil {
			return nil, fmt.Errorf("textgen: output %q is not bound", d.sess.Info().Outputs[i].Name)
		}
	}
	if err := d.sess.Run(ctx, d.ins, d.outs); err != nil {
		return nil, err
	}
	return d.logits, nil
}

// choose picks s's next token from its logits row and emits it.
func (d *Decoder) choose(s *sched.Seq, logits []float32) {
	q := state(s)
	tok, lp := q.sampler.next(logits, q.ids, len(q.ids)-q.prompt)
	q.ids = append(q.ids, tok)
	s.Emit(sched.Token{ID: tok, LogProb: lp})
	if slices.Contains(q.eos, tok) {
		q.finished = true
		s.Finish(sched.FinishEOS)
	}
}

// Release implements sched.Decoder.
func (d *Decoder) Release(s *sched.Seq) {
	q := state(s)
	if d.layout == NoCache {
		if i := slices.Index(d.rows, q); i >= 0 {
			d.rows = slices.Delete(d.rows, i, i+1)
		}
		return
	}
	r := q.row
	if r < 0 || r >= len(d.rows) || d.rows[r] != q {
		return
	}
	q.row = -1
	if moved := d.kv.remove(r); moved >= 0 {
		d.rows[r] = d.rows[moved]
		d.rows[r].row = r
	}
	d.rows[len(d.rows)-1] = nil
	d.rows = d.rows[:len(d.rows)-1]
	// Cut left padding every row carries once it exceeds a quarter of the past.
	if len(d.rows) > 0 {
		longest := 0
		for _, o := range d.rows {
			longest = max(longest, o.kvLen)
		}
		if pad := d.kv.past - longest; pad > 0 && 4*pad >= d.kv.past {
			d.kv.trim(pad)
		}
	}
}

// groupByLen splits seqs into runs of equal key, in first-seen order of the keys.
func groupByLen(seqs []*sched.Seq, key func(*Sequence) int) [][]*sched.Seq {
	if len(seqs) == 1 {
		return [][]*sched.Seq{seqs}
	}
	var groups [][]*sched.Seq
	at := map[int]int{}
	for _, s := range seqs {
		k := key(state(s))
		i, ok := at[k]
		if !ok {
			i = len(groups)
			at[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], s)
	}
	return groups
}

func copyIDs(dst []int64, src []int32) {
	for i, v := range src {
		dst[i] = int64(v)
	}
}

// grow returns b resized to n, reallocating only when its capacity is short.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n, n+n/4)
	}
	return b[:n]
}
