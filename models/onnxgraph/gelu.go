package onnxgraph

import (
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// FuseGelu replaces the exact GELU as exporters write it, Mul(Mul(x, Add(Erf(Div(x, √2)), 1)),
// 0.5), with one com.microsoft.Gelu node. ONNX Runtime fuses that pattern itself, but only
// while √2 is exact: after ConvertFloat16 the constant is 1.4140625 and the five elementwise
// kernels would stay separate, each reading and writing the [tokens, intermediate] tensor.
// It returns the number of GELUs fused.
func (m *Model) FuseGelu() (int, error) {
	g := m.Graph()
	prod := map[string]*pb.NodeProto{}
	uses := map[string]int{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			prod[o] = n
		}
		for _, in := range n.GetInput() {
			uses[in]++
		}
	}
	for _, o := range g.GetOutput() {
		uses[o.GetName()]++
	}
	consts := m.constants()
	isConst := func(name string, want float64) bool {
		c, ok := consts[name]
		return ok && len(c) == 1 && math.Abs(c[0]-want) < 1e-6*math.Max(1, math.Abs(want))
	}
	op := func(name, want string) *pb.NodeProto {
		if n := prod[name]; n != nil && n.GetOpType() == want && n.GetDomain() == "" && uses[name] == 1 {
			return n
		}
		return nil
	}
	// other returns the input of a two-input node that is not the constant c.
	other := func(n *pb.NodeProto, c float64) (string, bool) {
		in := n.GetInput()
		if len(in) != 2 {
			return "", false
		}
		if isConst(in[1], c) {
			return in[0], true
		}
		if isConst(in[0], c) {
			return in[1], true
		}
		return "", false
	}
	var drop []*pb.NodeProto
	fused := 0
	for _, half := range g.GetNode() {
		if half.GetOpType() != "Mul" || half.GetDomain() != "" {
			continue
		}
		mulName, ok := other(half, 0.5)
		if !ok {
			continue
		}
		mul := op(mulName, "Mul")
		if mul == nil {
			continue
		}
		for i := 0; i < 2; i++ {
			x, addName := mul.GetInput()[i], mul.GetInput()[1-i]
			add := op(addName, "Add")
			if add == nil {
				continue
			}
			erfName, ok := other(add, 1)
			if !ok {
				continue
			}
			erf := op(erfName, "Erf")
			if erf == nil {
				continue
			}
			div := op(erf.GetInput()[0], "Div")
			if div == nil || div.GetInput()[0] != x || !isConst(div.GetInput()[1], math.Sqrt2) {
				continue
			}
			g.Node = append(g.Node, &pb.NodeProto{
				OpType: proto.String("Gelu"), Domain: proto.String("com.microsoft"),
				Name: proto.String(m.fresh("infergo/Gelu")), Input: []string{x}, Output: []string{half.GetOutput()[0]},
			})
			drop = append(drop, half, mul, add, erf, div)
			fused++
			break
		}
	}
	if fused == 0 {
		return 0, nil
	}
	gone := map[*pb.NodeProto]bool{}
	for _, n := range drop {
		gone[n] = true
	}
	kept := g.Node[:0]
	for _, n := range g.Node {
		if !gone[n] {
			kept = append(kept, n)
		}
	}
	g.Node = kept
	m.requireOpset("com.microsoft", 1)
	m.prune()
	return fused, m.sortNodes()
}
