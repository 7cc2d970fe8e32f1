package asr

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
)

// decoderGraphs are Whisper's decoder graphs in one of optimum's two layouts:
//
//   - split: decoder_model.onnx (input_ids, encoder_hidden_states → logits, present.*
//     decoder and encoder KV) for the prompt, decoder_with_past_model.onnx (input_ids,
//     past_key_values.* → logits, present.*.decoder.*) for every later token;
//   - merged: decoder_model_merged.onnx, both behind an If on use_cache_branch: false with
//     empty past tensors for the prompt, true with the cache afterwards. Its encoder present
//     outputs are meaningful only on the prompt step; later steps reuse them.
//
// Some exports (transformers 4.43–4.45) also take cache_position, the positions of the new
// tokens.
type decoderGraphs struct {
	first, step runtime.Session // the same session for a merged graph
	merged      bool
	layers      int
	heads, dim  int // per-head KV shape
	vocab       int

	f, s graphIO
}

// graphIO indexes one graph's inputs and outputs.
type graphIO struct {
	inIDs, inEnc, inUseCache, inCachePos int
	inPastDec, inPastEnc                 []int // per layer × (key, value)
	outLogits                            int
	outDec, outEnc                       []int // per layer × (key, value); -1 when absent
}

func newGraphIO(info runtime.ModelInfo, layers int) graphIO {
	g := graphIO{
		inIDs: info.Input("input_ids"), inEnc: info.Input("encoder_hidden_states"),
		inUseCache: info.Input("use_cache_branch"), inCachePos: info.Input("cache_position"),
		outLogits: info.Output("logits"),
	}
	for i := 0; i < layers; i++ {
		for _, kv := range []string{"key", "value"} {
			p := strconv.Itoa(i)
			g.inPastDec = append(g.inPastDec, info.Input("past_key_values."+p+".decoder."+kv))
			g.inPastEnc = append(g.inPastEnc, info.Input("past_key_values."+p+".encoder."+kv))
			g.outDec = append(g.outDec, info.Output("present."+p+".decoder."+kv))
			g.outEnc = append(g.outEnc, info.Output("present."+p+".encoder."+kv))
		}
	}
	return g
}

// countLayers counts present.{i}.decoder.key outputs.
func countLayers(info runtime.ModelInfo) int {
	n := 0
	for info.Output("present."+strconv.Itoa(n)+".decoder.key") >= 0 {
		n++
	}
	return n
}

// newDecoderGraphs checks the graphs' inputs and outputs. For the merged layout pass the
// same session twice.
func newDecoderGraphs(first, step runtime.Session, merged bool) (*decoderGraphs, error) {
	fi := first.Info()
	d := &decoderGraphs{first: first, step: step, merged: merged, layers: countLayers(fi)}
	if d.layers == 0 {
		return nil, errors.New("asr: decoder graph has no present.0.decoder.key output")
	}
	d.f, d.s = newGraphIO(fi, d.layers), newGraphIO(step.Info(), d.layers)
	if d.f.inIDs < 0 || d.f.inEnc < 0 || d.f.outLogits < 0 {
		return nil, errors.New("asr: the decoder graph needs input_ids and encoder_hidden_states inputs and a logits output")
	}
	for i := range d.f.outDec {
		if d.f.outDec[i] < 0 || d.f.outEnc[i] < 0 {
			return nil, fmt.Errorf("asr: the decoder graph lacks a present.*.decoder/encoder output for layer %d", i/2)
		}
		if d.s.inPastDec[i] < 0 || d.s.inPastEnc[i] < 0 || d.s.outDec[i] < 0 {
			return nil, fmt.Errorf("asr: the with-past decoder lacks past_key_values/present for layer %d", i/2)
		}
	}
	if d.s.inIDs < 0 || d.s.outLogits < 0 {
		return nil, errors.New("asr: the with-past decoder needs input_ids and logits")
	}
	if merged {
		if d.f.inUseCache < 0 || fi.Inputs[d.f.inUseCache].DType != runtime.Bool {
			return nil, errors.New("asr: merged decoder without a bool use_cache_branch input")
		}
		if len(d.f.inPastDec) == 0 || d.f.inPastDec[0] < 0 {
			return nil, errors.New("asr: merged decoder without past_key_values inputs")
		}
	} else if d.f.inUseCache >= 0 || d.s.inUseCache >= 0 {
		return nil, errors.New("asr: use_cache_branch in a split decoder")
	}
	// Every input must be one we know how to fill.
	for _, g := range []struct {
		info runtime.ModelInfo
		io   graphIO
	}{{fi, d.f}, {step.Info(), d.s}} {
		known := map[int]bool{g.io.inIDs: true, g.io.inEnc: true, g.io.inUseCache: true, g.io.inCachePos: true}
		for i := range g.io.inPastDec {
			known[g.io.inPastDec[i]], known[g.io.inPastEnc[i]] = true, true
		}
		for i, in := range g.info.Inputs {
			if !known[i] {
				return nil, fmt.Errorf("asr: decoder input %q is not supported", in.Name)
			}
		}
	}
	lg := fi.Outputs[d.f.outLogits]
	if lg.DType != runtime.Float32 || len(lg.Shape) != 3 {
		return nil, fmt.Errorf("asr: logits is %s%v, want float32 [batch, seq, vocab]", lg.DType, lg.Shape)
	}
	d.vocab = int(lg.Shape[2])
	kv := step.Info().Inputs[d.s.inPastDec[0]].Shape
	if len(kv) == 4 {
		d.heads, d.dim = int(kv[1]), int(kv[3])
	}
	return d, nil
}

// kvGroup is a set of sequences that decode in lockstep: they joined in the same prefill and
// so have the same number of cached positions. Whisper's decoder takes no attention mask, so
// rows of different lengths cannot share a run. The group keeps its cache as batch tensors
// that feed the next step directly (present → past, no copy); when a sequence leaves, the
// group is compacted once before its next step.
type kvGroup struct {
	rows  []*whisperSeq
	past  int              // cached positions per row
	dec   []runtime.Tensor // layers × (key, value): [rows, heads, past, dim]
	enc   []runtime.Tensor // layers × (key, value): [rows, heads, T, dim]
	dirty bool             // a row was released
}

// whisperDecoder implements sched.Decoder for Whisper. It is driven by one DecodeLoop
// goroutine, so its state needs no locks.
type whisperDecoder struct {
	g     *decoderGraphs
	rules *logitRules
	eos   []int32
	langs []int32 // lang_to_id values, for detection

	emptyF32 []float32

	// force, when set (tests), sees every logits row before the rules and may impose the
	// next token (teacher forcing).
	force func(st *whisperSeq, logits []float32) (int32, bool)
}

var _ sched.Decoder = (*whisperDecoder)(nil)

// whisperSeq is one window's decoding state (sched.Seq.State).
type whisperSeq struct {
	ids        []int32 // prompt, then generated tokens
	begin      int     // prompt length: the first generated position
	timestamps bool
	detectLang bool           // the prompt's language slot is to be detected (ids[1] is a placeholder)
	enc        runtime.Tensor // encoder hidden states [T, d] until prefill
	group      *kvGroup
	row        int
	released   bool
}

func stateOf(s *sched.Seq) *whisperSeq { return s.State.(*whisperSeq) }

// Prefill implements sched.Decoder: language detection where asked, then the prompt pass
// for groups of equal prompt length, which computes the cross-attention KV once per window.
func (d *whisperDecoder) Prefill(ctx context.Context, join []*sched.Seq) error {
	var detect []*sched.Seq
	for _, s := range join {
		if stateOf(s).detectLang {
			detect = append(detect, s)
		}
	}
	if len(detect) > 0 {
		if err := d.detectLanguage(ctx, detect); err != nil {
			return err
		}
	}
	byLen := map[int][]*sched.Seq{}
	var order []int
	for _, s := range join {
		n := len(stateOf(s).ids)
		if _, ok := byLen[n]; !ok {
			order = append(order, n)
		}
		byLen[n] = append(byLen[n], s)
	}
	for _, n := range order {
		if err := d.prefillGroup(ctx, byLen[n]); err != nil {
			return err
		}
	}
	return nil
}

// detectLanguage is WhisperForConditionalGeneration.detect_language: one decoder pass over
// <|startoftranscript|> alone, the most likely language token wins.
func (d *whisperDecoder) detectLanguage(ctx context.Context, seqs []*sched.Seq) error {
	states := make([]*whisperSeq, len(seqs))
	for i, s := range seqs {
		states[i] = stateOf(s)
	}
	outs, err := d.runFirst(ctx, states, 1)
	if err != nil {
		return fmt.Errorf("language detection: %w", err)
	}
	logits := outs[d.g.f.outLogits].Float32s()
	for i, st := range states {
		row := logits[i*d.g.vocab : (i+1)*d.g.vocab]
		restrictTo(row, d.langs)
		st.ids[1] = argmax(row)
		st.detectLang = false
	}
	return nil
}

// runFirst runs the prompt graph over the first n tokens of each state's ids, with its
// encoder hidden states.
func (d *whisperDecoder) runFirst(ctx context.Context, states []*whisperSeq, n int) ([]runtime.Tensor, error) {
	g := d.g
	b := len(states)
	fi := g.first.Info()
	in := make([]runtime.Tensor, len(fi.Inputs))
	ids := make([]int64, b*n)
	for r, st := range states {
		for p := 0; p < n; p++ {
			ids[r*n+p] = int64(st.ids[p])
		}
	}
	in[g.f.inIDs] = runtime.NewTensor([]int64{int64(b), int64(n)}, ids)
	enc0 := states[0].enc
	T, dm := enc0.Shape[0], enc0.Shape[1]
	encData := make([]float32, 0, int64(b)*T*dm)
	for _, st := range states {
		if st.enc.Shape[0] != T || st.enc.Shape[1] != dm {
			return nil, fmt.Errorf("encoder states %v and %v in one batch", enc0.Shape, st.enc.Shape)
		}
		encData = append(encData, st.enc.Float32s()...)
	}
	in[g.f.inEnc] = runtime.NewTensor([]int64{int64(b), T, dm}, encData)
	if g.f.inCachePos >= 0 {
		pos := make([]int64, n)
		for p := range pos {
			pos[p] = int64(p)
		}
		in[g.f.inCachePos] = runtime.NewTensor([]int64{int64(n)}, pos)
	}
	if g.merged {
		in[g.f.inUseCache] = runtime.NewTensor([]int64{1}, []bool{false})
		// The prompt branch ignores the past: feed the smallest tensors the graph accepts,
		// length 0 unless the export fixed the length (some fix the encoder's 1500).
		for _, idx := range append(append([]int(nil), g.f.inPastDec...), g.f.inPastEnc...) {
			shape := []int64{int64(b), d.heads(fi, idx), 0, d.dims(fi, idx)}
			if decl := fi.Inputs[idx].Shape; len(decl) == 4 && decl[2] > 0 {
				shape[2] = decl[2]
			}
			if runtime.Elements(shape) == 0 {
				in[idx] = runtime.Tensor{Shape: shape, Data: d.emptyF32}
			} else {
				in[idx] = runtime.Zeros[float32](shape...)
			}
		}
	}
	out := make([]runtime.Tensor, len(fi.Outputs))
	if err := g.first.Run(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// heads and dims read a past input's declared head count and size, falling back to what the
// with-past graph declares.
func (d *whisperDecoder) heads(info runtime.ModelInfo, i int) int64 {
	if s := info.Inputs[i].Shape; len(s) == 4 && s[1] > 0 {
		return s[1]
	}
	return int64(max(d.g.heads, 1))
}

func (d *whisperDecoder) dims(info runtime.ModelInfo, i int) int64 {
	if s := info.Inputs[i].Shape; len(s) == 4 && s[3] > 0 {
		return s[3]
	}
	return int64(max(d.g.dim, 1))
}

func (d *whisperDecoder) prefillGroup(ctx context.Context, seqs []*sched.Seq) error {
	states := make([]*whisperSeq, len(seqs))
	for i, s := range seqs {
		states[i] = stateOf(s)
	}
	n := len(states[0].ids)
	outs, err := d.runFirst(ctx, states, n)
	if err != nil {
		return err
	}
	g := &kvGroup{rows: states, past: n}
	for i := range d.g.f.outDec {
		g.dec = append(g.dec, outs[d.g.f.outDec[i]])
		g.enc = append(g.enc, outs[d.g.f.outEnc[i]])
	}
	for _, t := range append(append([]runtime.Tensor(nil), g.dec...), g.enc...) {
		if len(t.Shape) != 4 || t.Shape[0] != int64(len(states)) || t.Float32s() == nil {
			return fmt.Errorf("present tensor %v for a batch of %d", t, len(states))
		}
	}
	logits := outs[d.g.f.outLogits]
	if len(logits.Shape) != 3 || logits.Shape[1] != int64(n) || logits.Shape[2] != int64(d.g.vocab) {
		return fmt.Errorf("logits %v, want [%d %d %d]", logits.Shape, len(states), n, d.g.vocab)
	}
	lv := logits.Float32s()
	for r, st := range states {
		st.group, st.row, st.enc = g, r, runtime.Tensor{} // the cross-attention KV replaces the states
		last := lv[(r*n+n-1)*d.g.vocab : (r*n+n)*d.g.vocab]
		d.emit(seqs[r], st, last)
	}
	return nil
}

// emit chooses a sequence's next token from its logits row and hands it to the loop.
func (d *whisperDecoder) emit(s *sched.Seq, st *whisperSeq, logits []float32) {
	var t int32
	forced := false
	if d.force != nil {
		t, forced = d.force(st, logits)
	}
	if !forced {
		t = d.rules.pick(logits, st.ids, st.begin, st.timestamps)
	}
	st.ids = append(st.ids, t)
	s.Emit(sched.Token{ID: t})
	if isEOS(d.eos, t) {
		s.Finish(sched.FinishEOS)
	}
}

// Step implements sched.Decoder: one with-past run per group.
func (d *whisperDecoder) Step(ctx context.Context, live []*sched.Seq) error {
	byGroup := map[*kvGroup][]*sched.Seq{}
	var groups []*kvGroup
	for _, s := range live {
		g := stateOf(s).group
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], s)
	}
	for _, g := range groups {
		if err := d.stepGroup(ctx, g, byGroup[g]); err != nil {
			return err
		}
	}
	return nil
}

func (d *whisperDecoder) stepGroup(ctx context.Context, g *kvGroup, seqs []*sched.Seq) error {
	if g.dirty || len(g.rows) != len(seqs) {
		g.compact()
	}
	if len(g.rows) != len(seqs) {
		return fmt.Errorf("group holds %d rows for %d live sequences", len(g.rows), len(seqs))
	}
	bySt := make(map[*whisperSeq]*sched.Seq, len(seqs))
	for _, s := range seqs {
		bySt[stateOf(s)] = s
	}
	G := d.g
	si := G.step.Info()
	b := len(g.rows)
	in := make([]runtime.Tensor, len(si.Inputs))
	ids := make([]int64, b)
	for r, st := range g.rows {
		ids[r] = int64(st.ids[len(st.ids)-1])
	}
	in[G.s.inIDs] = runtime.NewTensor([]int64{int64(b), 1}, ids)
	for i := range G.s.inPastDec {
		in[G.s.inPastDec[i]] = g.dec[i]
		in[G.s.inPastEnc[i]] = g.enc[i]
	}
	if G.s.inCachePos >= 0 {
		in[G.s.inCachePos] = runtime.NewTensor([]int64{1}, []int64{int64(g.past)})
	}
	if G.merged {
		in[G.s.inUseCache] = runtime.NewTensor([]int64{1}, []bool{true})
		// The cached branch ignores encoder_hidden_states: feed the smallest shape the graph
		// declares.
		decl := si.Inputs[G.s.inEnc].Shape
		shape := []int64{int64(b), 1, int64(g.enc[0].Shape[1] * g.enc[0].Shape[3])}
		for k := 1; k < 3 && k < len(decl); k++ {
			if decl[k] > 0 {
				shape[k] = decl[k]
			}
		}
		in[G.s.inEnc] = runtime.Zeros[float32](shape...)
	}
	out := make([]runtime.Tensor, len(si.Outputs))
	if err := G.step.Run(ctx, in, out); err != nil {
		return err
	}
	for i := range G.s.outDec {
		t := out[G.s.outDec[i]]
		if len(t.Shape) != 4 || t.Shape[0] != int64(b) || t.Shape[2] != int64(g.past+1) || t.Float32s() == nil {
			return fmt.Errorf("present decoder KV %v, want [%d, h, %d, d]", t.Shape, b, g.past+1)
		}
		g.dec[i] = t
	}
	g.past++
	lv := out[G.s.outLogits]
	if len(lv.Shape) != 3 || lv.Shape[0] != int64(b) || lv.Shape[2] != int64(G.vocab) {
		return fmt.Errorf("logits %v, want [%d 1 %d]", lv.Shape, b, G.vocab)
	}
	steps := int(lv.Shape[1])
	data := lv.Float32s()
	for r, st := range g.rows {
		row := data[(r*steps+steps-1)*G.vocab : (r*steps+steps)*G.vocab]
		d.emit(bySt[st], st, row)
	}
	return nil
}

// Release implements sched.Decoder.
func (d *whisperDecoder) Release(s *sched.Seq) {
	st := stateOf(s)
	st.enc = runtime.Tensor{}
	if st.group == nil || st.released {
		return
	}
	st.released = true
	st.group.dirty = true
}

// compact drops released rows from the group's cache, copying each kept row once.
func (g *kvGroup) compact() {
	keep := make([]int, 0, len(g.rows))
	rows := g.rows[:0:0]
	for r, st := range g.rows {
		if !st.released {
			keep = append(keep, r)
			rows = append(rows, st)
		}
	}
	g.dec = selectRows(g.dec, keep)
	g.enc = selectRows(g.enc, keep)
	for i, st := range rows {
		st.row = i
	}
	g.rows, g.dirty = rows, false
}

// selectRows keeps the given batch rows of each tensor.
func selectRows(ts []runtime.Tensor, keep []int) []runtime.Tensor {
	out := make([]runtime.Tensor, len(ts))
	for i, t := range ts {
		row := runtime.Elements(t.Shape[1:])
		src := t.Float32s()
		dst := make([]float32, int64(len(keep))*row)
		for j, r := range keep {
			copy(dst[int64(j)*row:], src[int64(r)*row:int64(r+1)*row])
		}
		shape := append([]int64{int64(len(keep))}, t.Shape[1:]...)
		out[i] = runtime.NewTensor(shape, dst)
	}
	return out
}
