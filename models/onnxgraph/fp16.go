package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// float16Unsupported are operators whose float inputs must stay float32 (sizes, scales) or
// that this rewrite does not handle (subgraphs); a graph holding one is refused.
var float16Unsupported = map[string]bool{"Resize": true, "Upsample": true, "If": true, "Loop": true, "Scan": true, "RandomNormal": true, "RandomUniform": true}

// ConvertFloat16 turns every float32 weight, constant and Cast-to-float into float16, so the
// whole computation runs in half precision, while graph inputs and outputs stay float32 (Casts
// are inserted at the boundary). Values beyond float16's range are clamped to ±65504 (as
// onnxconverter-common does), so the exporters' "finfo(float32).min" attention-mask fill stays
// finite. Weights in external data are read from m.Dir and stored inline, so the model must
// fit protobuf's 2 GiB limit once halved. Exact GELUs are fused first (see FuseGelu).
func (m *Model) ConvertFloat16() error {
	g := m.Graph()
	for _, n := range g.GetNode() {
		if float16Unsupported[n.GetOpType()] {
			return fmt.Errorf("onnxgraph: fp16: operator %s (%s) is not supported", n.GetOpType(), n.GetName())
		}
	}
	// √2 in the exported GELU is not a float16 number: fuse it while it is exact.
	if _, err := m.FuseGelu(); err != nil {
		return err
	}
	ext := externalReader{dir: m.Dir, files: map[string][]byte{}}
	for _, t := range g.GetInitializer() {
		if err := toFloat16Tensor(t, &ext); err != nil {
			return err
		}
	}
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "Constant", "ConstantOfShape":
			for _, a := range n.GetAttribute() {
				if err := toFloat16Attr(a, &ext); err != nil {
					return fmt.Errorf("onnxgraph: fp16: %s: %w", n.GetName(), err)
				}
			}
		case "Cast":
			for _, a := range n.GetAttribute() {
				if a.GetName() == "to" && a.GetI() == int64(pb.TensorProto_FLOAT) {
					a.I = proto.Int64(int64(pb.TensorProto_FLOAT16))
				}
			}
		}
	}
	// Float32 inputs are cast to float16 as they enter.
	for _, in := range g.GetInput() {
		if isFloat(in) {
			half := m.fresh(in.GetName() + "_fp16")
			m.renameUses(in.GetName(), half)
			g.Node = append([]*pb.NodeProto{{OpType: proto.String("Cast"), Name: proto.String(m.fresh("infergo/CastIn")),
				Input: []string{in.GetName()}, Output: []string{half}, Attribute: []*pb.AttributeProto{attrInt("to", int64(pb.TensorProto_FLOAT16))}}}, g.Node...)
		}
	}
	// Float outputs are produced in float16 under a new name and cast back.
	for _, out := range g.GetOutput() {
		if !isFloat(out) {
			continue
		}
		half := m.fresh(out.GetName() + "_fp16")
		m.renameUses(out.GetName(), half)
		for _, n := range g.GetNode() {
			for i, o := range n.GetOutput() {
				if o == out.GetName() {
					n.Output[i] = half
				}
			}
		}
		g.Node = append(g.Node, &pb.NodeProto{OpType: proto.String("Cast"), Name: proto.String(m.fresh("infergo/CastOut")),
			Input: []string{half}, Output: []string{out.GetName()}, Attribute: []*pb.AttributeProto{attrInt("to", int64(pb.TensorProto_FLOAT))}})
	}
	// Intermediate type hints are now wrong; ONNX Runtime infers them again.
	g.ValueInfo = nil
	return nil
}

func isFloat(v *pb.ValueInfoProto) bool {
	return pb.TensorProto_DataType(v.GetType().GetTensorType().GetElemType()) == pb.TensorProto_FLOAT
}

// renameUses points every node input that reads from to to.
func (m *Model) renameUses(from, to string) {
	for _, n := range m.Graph().GetNode() {
		for i, in := range n.GetInput() {
			if in == from {
				n.Input[i] = to
			}
		}
	}
}

func toFloat16Attr(a *pb.AttributeProto, ext *externalReader) error {
	switch a.GetName() {
	case "value":
		if a.GetT() != nil {
			return toFloat16Tensor(a.GetT(), ext)
		}
	case "value_float":
		a.Name, a.Type, a.T = proto.String("value"), pb.AttributeProto_TENSOR.Enum(), float16Tensor(nil, []float32{a.GetF()})
		a.F = nil
	case "value_floats":
		a.Name, a.Type, a.T = proto.String("value"), pb.AttributeProto_TENSOR.Enum(), float16Tensor([]int64{int64(len(a.GetFloats()))}, a.GetFloats())
		a.Floats = nil
	}
	return nil
}

func float16Tensor(dims []int64, vals []float32) *pb.TensorProto {
	t := &pb.TensorProto{Dims: dims, DataType: proto.Int32(int32(pb.TensorProto_FLOAT16))}
	t.RawData = halfBytes(vals)
	return t
}

// toFloat16Tensor converts t in place when it holds float32 data.
func toFloat16Tensor(t *pb.TensorProto, ext *externalReader) error {
	if pb.TensorProto_DataType(t.GetDataType()) != pb.TensorProto_FLOAT {
		return nil
	}
	vals, err := floats(t, ext)
	if err != nil {
		return fmt.Errorf("onnxgraph: fp16: tensor %q: %w", t.GetName(), err)
	}
	t.DataType = proto.Int32(int32(pb.TensorProto_FLOAT16))
	t.FloatData, t.ExternalData, t.DataLocation = nil, nil, nil
	t.RawData = halfBytes(vals)
	return nil
}

// floats returns a float32 tensor's values from raw_data, float_data or external data.
func floats(t *pb.TensorProto, ext *externalReader) ([]float32, error) {
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	var raw []byte
	switch {
	case t.GetDataLocation() == pb.TensorProto_EXTERNAL:
		var err error
		if raw, err = ext.read(t.GetExternalData()); err != nil {
			return nil, err
		}
	case t.RawData != nil:
		raw = t.GetRawData()
	default:
		if int64(len(t.GetFloatData())) != n {
			return nil, fmt.Errorf("%d float_data values for %d elements", len(t.GetFloatData()), n)
		}
		return t.GetFloatData(), nil
	}
	if int64(len(raw)) != 4*n {
		return nil, fmt.Errorf("%d bytes for %d float32 elements", len(raw), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// externalReader reads external-data ranges, each file once.
type externalReader struct {
	dir   string
	files map[string][]byte
}

func (r *externalReader) read(entries []*pb.StringStringEntryProto) ([]byte, error) {
	var loc string
	off, length := int64(0), int64(-1)
	for _, e := range entries {
		var err error
		switch e.GetKey() {
		case "location":
			loc = e.GetValue()
		case "offset":
			off, err = strconv.ParseInt(e.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(e.GetValue(), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("external data %s: %w", e.GetKey(), err)
		}
	}
	if loc == "" || filepath.IsAbs(loc) || strings.Contains(filepath.ToSlash(loc), "..") {
		return nil, fmt.Errorf("external data location %q must be a file beside the graph", loc)
	}
	b, ok := r.files[loc]
	if !ok {
		var err error
		if b, err = os.ReadFile(filepath.Join(r.dir, loc)); err != nil {
			return nil, fmt.Errorf("external data: %w", err)
		}
		r.files[loc] = b
	}
	if length < 0 {
		length = int64(len(b)) - off
	}
	if off < 0 || off+length > int64(len(b)) {
		return nil, fmt.Errorf("external data %s: range %d+%d beyond its %d bytes", loc, off, length, len(b))
	}
	return b[off : off+length], nil
}

func halfBytes(vals []float32) []byte {
	b := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(b[2*i:], Float16Bits(v))
	}
	return b
}

// Float16Bits converts f to IEEE half precision, rounding to nearest even. Finite values
// beyond ±65504 are clamped to it; infinities and NaN are kept.
func Float16Bits(f float32) uint16 {
	if !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) {
		f = float32(math.Max(-65504, math.Min(65504, float64(f))))
	}
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // inf, NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f: // cannot happen after clamping
		return sign | 0x7bff
	case exp-127+15 <= 0: // subnormal half (or zero)
		e := exp - 127 + 15
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	e := uint32(exp - 127 + 15)
	half := e<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is right
	}
	return sign | uint16(half)
}

// Float16Value converts half-precision bits back to float32 (for tests and checks).
func Float16Value(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(mant) / 1024 / 16384
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
}
