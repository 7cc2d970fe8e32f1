package onnxgraph

import (
	"fmt"

	"github.com/infergo/infergo/models"
	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// PooledOutput names the [batch, hidden] float32 output AppendPooling adds.
const PooledOutput = "infergo_pooled"

// PoolSpec describes the pooling to append.
type PoolSpec struct {
	// Mode is the sentence-transformers pooling mode.
	Mode models.Pooling
	// Normalize L2-normalises the pooled vector in the graph (as the Normalize module does).
	// Infergo's pipeline keeps it off so that requests can cut dimensions before normalising.
	Normalize bool
	// TokenOutput is the [batch, seq, hidden] output to pool; "" picks last_hidden_state or
	// token_embeddings.
	TokenOutput string
}

// AppendPooling adds PooledOutput: the masked pooling of the token-level output, computed
// exactly as sentence-transformers' Pooling module does on padded batches (mean divides by
// max(Σmask, 1e-9), max fills padding with -1e9, lasttoken takes position Σmask-1 as with right
// padding), then optionally L2 normalisation (x / max(‖x‖, 1e-12)). The token output stays.
func (m *Model) AppendPooling(s PoolSpec) error {
	tok := s.TokenOutput
	if tok == "" {
		for _, name := range []string{"last_hidden_state", "token_embeddings"} {
			if m.output(name) != nil {
				tok = name
				break
			}
		}
	}
	out := m.output(tok)
	if out == nil {
		return fmt.Errorf("onnxgraph: pool: the graph has no token-level output %q", tok)
	}
	if m.output(PooledOutput) != nil {
		return fmt.Errorf("onnxgraph: pool: the graph already has %s", PooledOutput)
	}
	if !m.hasInput("attention_mask") {
		return fmt.Errorf("onnxgraph: pool: the graph has no attention_mask input")
	}
	tt := out.GetType().GetTensorType()
	dims := tt.GetShape().GetDim()
	if len(dims) != 3 {
		return fmt.Errorf("onnxgraph: pool: output %q has rank %d, want [batch, seq, hidden]", tok, len(dims))
	}
	h := tok
	switch pb.TensorProto_DataType(tt.GetElemType()) {
	case pb.TensorProto_FLOAT:
	case pb.TensorProto_FLOAT16:
		h = m.node("Cast", []string{h}, attrInt("to", int64(pb.TensorProto_FLOAT)))
	default:
		return fmt.Errorf("onnxgraph: pool: output %q has element type %d, want float", tok, tt.GetElemType())
	}

	maskF := m.node("Cast", []string{"attention_mask"}, attrInt("to", int64(pb.TensorProto_FLOAT)))
	var pooled string
	switch s.Mode {
	case models.PoolMean, models.PoolMeanSqrt:
		sum := m.reduce("ReduceSum", m.node("Mul", []string{h, m.unsqueeze(maskF, 2)}), 1, false)
		count := m.node("Max", []string{m.reduce("ReduceSum", maskF, 1, true), m.constFloat("min_count", nil, 1e-9)})
		if s.Mode == models.PoolMeanSqrt {
			count = m.node("Sqrt", []string{count})
		}
		pooled = m.node("Div", []string{sum, count})
	case models.PoolCLS:
		pooled = m.node("Gather", []string{h, m.constInt64("first", nil, 0)}, attrInt("axis", 1))
	case models.PoolMax:
		maskB := m.unsqueeze(m.node("Cast", []string{"attention_mask"}, attrInt("to", int64(pb.TensorProto_BOOL))), 2)
		filled := m.node("Where", []string{maskB, h, m.constFloat("pad_fill", nil, -1e9)})
		pooled = m.reduce("ReduceMax", filled, 1, false)
	case models.PoolLastToken:
		maskI := m.node("Cast", []string{"attention_mask"}, attrInt("to", int64(pb.TensorProto_INT64)))
		last := m.node("Sub", []string{m.reduce("ReduceSum", maskI, 1, true), m.constInt64("one", nil, 1)})
		pooled = m.node("GatherND", []string{h, last}, attrInt("batch_dims", 1))
	default:
		return fmt.Errorf("onnxgraph: pool: mode %q is not supported", s.Mode)
	}
	if s.Normalize {
		norm := m.node("Max", []string{m.reduce("ReduceL2", pooled, 1, true), m.constFloat("min_norm", nil, 1e-12)})
		pooled = m.node("Div", []string{pooled, norm})
	}
	m.node("Identity", []string{pooled})
	g := m.Graph()
	g.Node[len(g.Node)-1].Output[0] = PooledOutput

	batch := any("batch")
	if p := dims[0].GetDimParam(); p != "" {
		batch = p
	} else if v := dims[0].GetDimValue(); v > 0 {
		batch = v
	}
	hidden := any("hidden")
	if v := dims[2].GetDimValue(); v > 0 {
		hidden = v
	}
	g.Output = append(g.Output, tensorValueInfo(PooledOutput, pb.TensorProto_FLOAT, batch, hidden))
	return nil
}

// unsqueeze adds axis to x (Unsqueeze took its axes as an attribute before opset 13).
func (m *Model) unsqueeze(x string, axis int64) string {
	if m.Opset() >= 13 {
		return m.node("Unsqueeze", []string{x, m.constInt64("axes", []int64{1}, axis)})
	}
	return m.node("Unsqueeze", []string{x}, attrInts("axes", axis))
}

// reduce applies a Reduce* operator over one axis; axes moved from an attribute to an input
// in opset 13 (ReduceSum) and 18 (the others).
func (m *Model) reduce(op, x string, axis int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	inputAxes := int64(18)
	if op == "ReduceSum" {
		inputAxes = 13
	}
	if m.Opset() >= inputAxes {
		return m.node(op, []string{x, m.constInt64("axes", []int64{1}, axis)}, attrInt("keepdims", k))
	}
	return m.node(op, []string{x}, attrInts("axes", axis), attrInt("keepdims", k))
}
