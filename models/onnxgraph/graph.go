// Package onnxgraph rewrites ONNX graphs for the device they run on: it appends the
// sentence-transformers pooling (and optional L2 normalisation) to encoder graphs so only
// [batch, hidden] leaves the GPU, and converts float32 weights to float16 with float32 inputs
// and outputs kept. Rewritten graphs are written next to the original, so their external-data
// references (model.onnx_data beside the graph) stay valid unchanged.
package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// Model is a parsed ONNX model and the folder its external data is resolved from.
type Model struct {
	Proto *pb.ModelProto
	// Dir is the folder of the file the model was read from.
	Dir string

	names map[string]bool // every value and node name, for fresh names
}

// Read parses the graph at path. External data is not read.
func Read(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: %w", err)
	}
	return Parse(b, filepath.Dir(path))
}

// Parse decodes a serialised model whose external data lives in dir.
func Parse(b []byte, dir string) (*Model, error) {
	m := &pb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("onnxgraph: parse: %w", err)
	}
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("onnxgraph: the model has no graph")
	}
	return &Model{Proto: m, Dir: dir}, nil
}

// Marshal serialises the model. Protobuf limits a message to 2 GiB: larger models must keep
// their weights in external data.
func (m *Model) Marshal() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("onnxgraph: serialise: %w", err)
	}
	return b, nil
}

// Graph returns the main graph.
func (m *Model) Graph() *pb.GraphProto { return m.Proto.GetGraph() }

// Opset returns the default-domain operator set version (0 when not declared).
func (m *Model) Opset() int64 { return m.opset("") }

func (m *Model) opset(domain string) int64 {
	for _, o := range m.Proto.GetOpsetImport() {
		if o.GetDomain() == domain || (domain == "" && o.GetDomain() == "ai.onnx") {
			return o.GetVersion()
		}
	}
	return 0
}

// requireOpset adds domain at version v to the model's imports when it is missing.
func (m *Model) requireOpset(domain string, v int64) {
	if m.opset(domain) == 0 {
		m.Proto.OpsetImport = append(m.Proto.OpsetImport, &pb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(v)})
	}
}

// fresh returns a value or node name not used anywhere in the graph yet.
func (m *Model) fresh(base string) string {
	if m.names == nil {
		m.names = map[string]bool{}
		g := m.Graph()
		add := func(ss ...string) {
			for _, s := range ss {
				m.names[s] = true
			}
		}
		for _, v := range g.GetInput() {
			add(v.GetName())
		}
		for _, v := range g.GetOutput() {
			add(v.GetName())
		}
		for _, t := range g.GetInitializer() {
			add(t.GetName())
		}
		for _, n := range g.GetNode() {
			add(n.GetName())
			add(n.GetInput()...)
			add(n.GetOutput()...)
		}
	}
	name := base
	for i := 1; m.names[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	m.names[name] = true
	return name
}

// node appends a node with a fresh name and one fresh output, which it returns.
func (m *Model) node(op string, inputs []string, attrs ...*pb.AttributeProto) string {
	out := m.fresh("infergo/" + op + "_out")
	m.Graph().Node = append(m.Graph().Node, &pb.NodeProto{
		OpType: proto.String(op), Name: proto.String(m.fresh("infergo/" + op)),
		Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	return out
}

// constInt64 adds an int64 initializer and returns its name.
func (m *Model) constInt64(base string, dims []int64, vals ...int64) string {
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return m.initializer(base, pb.TensorProto_INT64, dims, raw)
}

// constFloat adds a float32 initializer and returns its name.
func (m *Model) constFloat(base string, dims []int64, vals ...float32) string {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return m.initializer(base, pb.TensorProto_FLOAT, dims, raw)
}

func (m *Model) initializer(base string, dt pb.TensorProto_DataType, dims []int64, raw []byte) string {
	name := m.fresh("infergo/" + base)
	m.Graph().Initializer = append(m.Graph().Initializer, &pb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(dt)), Dims: dims, RawData: raw,
	})
	return name
}

func attrInt(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// output returns the graph output named name, or nil.
func (m *Model) output(name string) *pb.ValueInfoProto {
	for _, o := range m.Graph().GetOutput() {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// hasInput reports whether the graph has an input named name.
func (m *Model) hasInput(name string) bool {
	for _, in := range m.Graph().GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	return false
}

// tensorValueInfo describes a tensor graph input or output.
func tensorValueInfo(name string, dt pb.TensorProto_DataType, dims ...any) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		switch v := d.(type) {
		case int64:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: v}})
		case string:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: v}})
		}
	}
	return &pb.ValueInfoProto{
		Name: proto.String(name),
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(dt)), Shape: shape,
		}}},
	}
}

// OutputRanks returns the rank of each graph output of the file at path (task inference
// without opening a session).
func OutputRanks(path string) (map[string]int, error) {
	m, err := Read(path)
	if err != nil {
		return nil, err
	}
	ranks := map[string]int{}
	for _, o := range m.Graph().GetOutput() {
		ranks[o.GetName()] = len(o.GetType().GetTensorType().GetShape().GetDim())
	}
	return ranks, nil
}
