package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// FuseAttention replaces each self-attention block of a bidirectional encoder, in the form
// torch 2.11's exporter writes for transformers' SDPA attention, with one
// com.microsoft.MultiHeadAttention node (fused attention kernels on CUDA). The matched form:
//
//	Q = Mul(Transpose(Reshape(q), perm 0,2,1,3), cq)     K = Mul(Transpose(Reshape(k), perm 0,2,3,1), ck)
//	V = Transpose(Reshape(v), perm 0,2,1,3)
//	P = Softmax(Add(MatMul(Q, K), mask)), optionally Where(IsNaN(P), 0, P)
//	out = Reshape(Transpose(MatMul(P, V), perm 0,2,1,3))
//
// becomes MultiHeadAttention(q, k, v, key_padding_mask = attention_mask as int32) with
// num_heads from the head reshape and scale = cq·ck. The exported additive mask is only
// ever the padding of the keys for encoders, which key_padding_mask expresses; use this on
// bidirectional encoders only (a causal mask would be dropped). It returns the number of
// blocks fused; nodes left without consumers are removed.
func (m *Model) FuseAttention() (int, error) { return m.FuseAttentionMask(MaskPadding) }

// AttentionMask is how FuseAttention hands the padding to MultiHeadAttention. ONNX Runtime
// picks its CUDA attention kernel partly by the mask's form.
type AttentionMask int

const (
	// MaskPadding passes attention_mask as it is, [batch, seq] int32.
	MaskPadding AttentionMask = iota
	// MaskKeyLengths passes each row's number of keys, [batch] int32: the same attention when
	// padding is on the right, which is how Infergo's scheduler pads.
	MaskKeyLengths
	// MaskNone passes no mask: correct only for batches without padding. For measurements.
	MaskNone
)

// tag names the form in rewritten graphs' file names.
func (f AttentionMask) tag() string {
	switch f {
	case MaskKeyLengths:
		return "mha-keylen"
	case MaskNone:
		return "mha-nomask"
	}
	return "mha"
}

// FuseAttentionMask is FuseAttention with the mask in the given form.
func (m *Model) FuseAttentionMask(form AttentionMask) (int, error) {
	g := m.Graph()
	if !m.hasInput("attention_mask") {
		return 0, fmt.Errorf("onnxgraph: fuse attention: no attention_mask input")
	}
	prod := map[string]*pb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			prod[o] = n
		}
	}
	consts := m.constants()
	dims := map[string][]int64{}
	for _, t := range g.GetInitializer() {
		dims[t.GetName()] = t.GetDims()
	}
	var mask string
	made := false
	fused := 0
	var replaced []*pb.NodeProto
	for _, n := range g.GetNode() {
		f, ok := matchAttention(n, prod, consts, dims)
		if !ok {
			continue
		}
		if !made {
			made = true
			switch form {
			case MaskPadding:
				mask = m.node("Cast", []string{"attention_mask"}, attrInt("to", int64(pb.TensorProto_INT32)))
			case MaskKeyLengths:
				ones := m.node("Cast", []string{"attention_mask"}, attrInt("to", int64(pb.TensorProto_INT32)))
				mask = m.reduce("ReduceSum", ones, 1, false)
			case MaskNone:
			default:
				return 0, fmt.Errorf("onnxgraph: fuse attention: unknown mask form %d", form)
			}
		}
		mha := &pb.NodeProto{
			OpType: proto.String("MultiHeadAttention"), Domain: proto.String("com.microsoft"),
			Name:  proto.String(m.fresh("infergo/MultiHeadAttention")),
			Input: []string{f.q, f.k, f.v, "", mask}, Output: []string{n.GetOutput()[0]},
			Attribute: []*pb.AttributeProto{attrInt("num_heads", f.heads), attrFloat("scale", f.scale)},
		}
		replaced = append(replaced, n)
		g.Node = append(g.Node, mha)
		fused++
	}
	if fused == 0 {
		return 0, nil
	}
	drop := map[*pb.NodeProto]bool{}
	for _, n := range replaced {
		drop[n] = true
	}
	kept := g.Node[:0]
	for _, n := range g.Node {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	g.Node = kept
	m.requireOpset("com.microsoft", 1)
	m.prune()
	if err := m.sortNodes(); err != nil {
		return 0, err
	}
	return fused, nil
}

type attentionMatch struct {
	q, k, v string
	heads   int64
	scale   float32
}

// matchAttention checks whether reshape is the output Reshape of an attention block.
func matchAttention(reshape *pb.NodeProto, prod map[string]*pb.NodeProto, consts map[string][]float64, dims map[string][]int64) (attentionMatch, bool) {
	var f attentionMatch
	op := func(name, want string) *pb.NodeProto {
		if n := prod[name]; n != nil && n.GetOpType() == want && n.GetDomain() == "" {
			return n
		}
		return nil
	}
	if reshape.GetOpType() != "Reshape" || len(reshape.GetInput()) != 2 {
		return f, false
	}
	t3 := op(reshape.GetInput()[0], "Transpose")
	if t3 == nil || !hasPerm(t3, 0, 2, 1, 3) {
		return f, false
	}
	pv := op(t3.GetInput()[0], "MatMul")
	if pv == nil {
		return f, false
	}
	probs := pv.GetInput()[0]
	if w := op(probs, "Where"); w != nil && op(w.GetInput()[0], "IsNaN") != nil {
		probs = w.GetInput()[2]
	}
	sm := op(probs, "Softmax")
	if sm == nil || (attr(sm, "axis") != -1 && attr(sm, "axis") != 3) {
		return f, false
	}
	add := op(sm.GetInput()[0], "Add")
	if add == nil {
		return f, false
	}
	qk := op(add.GetInput()[0], "MatMul")
	if qk == nil {
		qk = op(add.GetInput()[1], "MatMul")
	}
	if qk == nil {
		return f, false
	}
	// Q and K, each optionally scaled by a constant.
	scale := 1.0
	side := func(name string, perm ...int64) (string, *pb.NodeProto, bool) {
		if mul := op(name, "Mul"); mul != nil {
			for i, in := range mul.GetInput() {
				if c, ok := consts[in]; ok && len(c) == 1 {
					scale *= c[0]
					name = mul.GetInput()[1-i]
					break
				}
			}
		}
		t := op(name, "Transpose")
		if t == nil || !hasPerm(t, perm...) {
			return "", nil, false
		}
		r := op(t.GetInput()[0], "Reshape")
		if r == nil {
			return "", nil, false
		}
		return r.GetInput()[0], r, true
	}
	q, qr, ok1 := side(qk.GetInput()[0], 0, 2, 1, 3)
	k, _, ok2 := side(qk.GetInput()[1], 0, 2, 3, 1)
	v, _, ok3 := side(pv.GetInput()[1], 0, 2, 1, 3)
	if !ok1 || !ok2 || !ok3 {
		return f, false
	}
	heads, size := dimsOf(qr.GetInput()[1], 4, prod, consts)
	if heads <= 0 && size > 0 {
		// The exporter leaves the head count to Reshape (-1): hidden / head size, the hidden
		// size read from the block's output reshape [b, s, hidden].
		_, hidden := dimsOf(reshape.GetInput()[1], 3, prod, consts)
		if hidden <= 0 {
			hidden = projectionWidth(q, prod, dims)
		}
		if hidden > 0 && hidden%size == 0 {
			heads = hidden / size
		}
	}
	if heads <= 0 {
		return f, false
	}
	return attentionMatch{q: q, k: k, v: v, heads: heads, scale: float32(scale)}, true
}

// dimsOf reads the last two entries of a rank-n reshape target that is a constant or a Concat
// of n parts ([b, s, heads, size] → heads, size; [b, s, hidden] → _, hidden); unknown or
// inferred (-1) entries are 0.
func dimsOf(shape string, n int, prod map[string]*pb.NodeProto, consts map[string][]float64) (int64, int64) {
	get := func(v float64) int64 { return max(int64(v), 0) }
	if c, ok := consts[shape]; ok && len(c) == n {
		return get(c[n-2]), get(c[n-1])
	}
	cat := prod[shape]
	if cat == nil || cat.GetOpType() != "Concat" || len(cat.GetInput()) != n {
		return 0, 0
	}
	var out [2]int64
	for i, in := range cat.GetInput()[n-2:] {
		if c, ok := consts[in]; ok && len(c) == 1 {
			out[i] = get(c[0])
		}
	}
	return out[0], out[1]
}

// projectionWidth returns the output width of the projection q = Add(bias, MatMul(x, W)):
// the bias length or W's second dimension (initializers, possibly behind an Identity).
func projectionWidth(q string, prod map[string]*pb.NodeProto, dims map[string][]int64) int64 {
	init := func(name string) []int64 {
		if n := prod[name]; n != nil && n.GetOpType() == "Identity" {
			name = n.GetInput()[0]
		}
		return dims[name]
	}
	add := prod[q]
	if add == nil || add.GetOpType() != "Add" {
		return 0
	}
	for _, in := range add.GetInput() {
		if d := init(in); len(d) == 1 {
			return d[0]
		}
		if mm := prod[in]; mm != nil && mm.GetOpType() == "MatMul" {
			if d := init(mm.GetInput()[1]); len(d) == 2 {
				return d[1]
			}
		}
	}
	return 0
}

func hasPerm(n *pb.NodeProto, perm ...int64) bool {
	for _, a := range n.GetAttribute() {
		if a.GetName() == "perm" {
			p := a.GetInts()
			if len(p) != len(perm) {
				return false
			}
			for i := range p {
				if p[i] != perm[i] {
					return false
				}
			}
			return true
		}
	}
	return false
}

func attr(n *pb.NodeProto, name string) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return math.MinInt64
}

// constants maps the outputs of Constant nodes and small initializers (≤ 8 values, float or
// int, inline) to their values.
func (m *Model) constants() map[string][]float64 {
	out := map[string][]float64{}
	add := func(name string, t *pb.TensorProto) {
		if v, ok := smallValues(t); ok {
			out[name] = v
		}
	}
	for _, t := range m.Graph().GetInitializer() {
		add(t.GetName(), t)
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Constant" {
			for _, a := range n.GetAttribute() {
				if a.GetName() == "value" && a.GetT() != nil {
					add(n.GetOutput()[0], a.GetT())
				}
			}
		}
	}
	return out
}

func smallValues(t *pb.TensorProto) ([]float64, bool) {
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		return nil, false
	}
	raw := t.GetRawData()
	var v []float64
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case pb.TensorProto_FLOAT:
		for _, f := range t.GetFloatData() {
			v = append(v, float64(f))
		}
		for i := 0; i+4 <= len(raw); i += 4 {
			v = append(v, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
		}
	case pb.TensorProto_INT64:
		for _, x := range t.GetInt64Data() {
			v = append(v, float64(x))
		}
		for i := 0; i+8 <= len(raw); i += 8 {
			v = append(v, float64(int64(binary.LittleEndian.Uint64(raw[i:]))))
		}
	default:
		return nil, false
	}
	return v, len(v) > 0 && len(v) <= 8
}

// prune removes nodes none of whose outputs is used, until none is left.
func (m *Model) prune() {
	g := m.Graph()
	for {
		used := map[string]bool{}
		for _, o := range g.GetOutput() {
			used[o.GetName()] = true
		}
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
		}
		kept := g.Node[:0]
		removed := false
		for _, n := range g.Node {
			live := false
			for _, o := range n.GetOutput() {
				if used[o] {
					live = true
				}
			}
			if live {
				kept = append(kept, n)
			} else {
				removed = true
			}
		}
		g.Node = kept
		if !removed {
			return
		}
	}
}

// sortNodes orders nodes topologically (ONNX requires it; new nodes were appended).
func (m *Model) sortNodes() error {
	g := m.Graph()
	ready := map[string]bool{"": true}
	for _, in := range g.GetInput() {
		ready[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		ready[t.GetName()] = true
	}
	var sorted []*pb.NodeProto
	pending := append([]*pb.NodeProto(nil), g.Node...)
	for len(pending) > 0 {
		var next []*pb.NodeProto
		for _, n := range pending {
			ok := true
			for _, in := range n.GetInput() {
				if !ready[in] {
					ok = false
					break
				}
			}
			if ok {
				sorted = append(sorted, n)
				for _, o := range n.GetOutput() {
					ready[o] = true
				}
			} else {
				next = append(next, n)
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("onnxgraph: the graph has a cycle or an undefined input (%s)", next[0].GetName())
		}
		pending = next
	}
	g.Node = sorted
	return nil
}
