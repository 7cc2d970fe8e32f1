package onnxedit

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Builder writes a new ONNX model node by node: enough to make benchmark graphs with random
// weights in the shape of real models (opset 17, the default domain). Names are generated
// unless given.
type Builder struct {
	nodes, inits, inputs, outputs []field
	n                             int
}

// ONNX element types.
const (
	Float = 1
	Int64 = 7
	Bool  = 9
)

// Dim is a tensor dimension: a positive size or a symbolic name.
type Dim struct {
	Size  int64
	Param string
}

// D returns a fixed dimension; P a symbolic one.
func D(n int64) Dim     { return Dim{Size: n} }
func P(name string) Dim { return Dim{Param: name} }

// Input declares a graph input and returns its name.
func (b *Builder) Input(name string, elem int, dims ...Dim) string {
	b.inputs = append(b.inputs, bytesField(graphInput, valueInfo(name, elem, dims)))
	return name
}

// Output declares value as a graph output.
func (b *Builder) Output(name string, elem int, dims ...Dim) {
	b.outputs = append(b.outputs, bytesField(graphOutput, valueInfo(name, elem, dims)))
}

func valueInfo(name string, elem int, dims []Dim) []byte {
	var shape []field
	for _, d := range dims {
		if d.Param != "" {
			shape = append(shape, bytesField(1, encode([]field{stringField(2, d.Param)})))
		} else {
			shape = append(shape, bytesField(1, encode([]field{varintField(1, uint64(d.Size))})))
		}
	}
	tensor := encode([]field{varintField(1, uint64(elem)), bytesField(2, encode(shape))})
	return encode([]field{stringField(valueName, name), bytesField(valueType, encode([]field{bytesField(1, tensor)}))})
}

// Floats adds a float32 initializer and returns its name.
func (b *Builder) Floats(name string, dims []int64, v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	b.init(name, dims, Float, raw)
	return name
}

// Int64s adds an int64 initializer and returns its name.
func (b *Builder) Int64s(name string, dims []int64, v []int64) string {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	b.init(name, dims, Int64, raw)
	return name
}

func (b *Builder) init(name string, dims []int64, elem int, raw []byte) {
	var fs []field
	for _, d := range dims {
		fs = append(fs, varintField(1, uint64(d)))
	}
	fs = append(fs, varintField(2, uint64(elem)), stringField(tensorName, name), bytesField(9, raw))
	b.inits = append(b.inits, bytesField(graphInitializer, encode(fs)))
}

// Attr is a node attribute.
type Attr struct {
	Name  string
	Int   *int64
	Ints  []int64
	Float *float32
}

// I, Is and F make attributes.
func I(name string, v int64) Attr     { return Attr{Name: name, Int: &v} }
func Is(name string, v ...int64) Attr { return Attr{Name: name, Ints: v} }
func F(name string, v float32) Attr   { return Attr{Name: name, Float: &v} }

// Op adds a node with one output and returns the output's name.
func (b *Builder) Op(op string, inputs []string, attrs ...Attr) string {
	return b.OpN(op, inputs, 1, attrs...)[0]
}

// OpN adds a node with n outputs.
func (b *Builder) OpN(op string, inputs []string, n int, attrs ...Attr) []string {
	b.n++
	outs := make([]string, n)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_%d_%d", op, b.n, i)
	}
	b.Node(op, inputs, outs, attrs...)
	return outs
}

// Node adds a node with named outputs.
func (b *Builder) Node(op string, inputs, outputs []string, attrs ...Attr) {
	var fs []field
	for _, in := range inputs {
		fs = append(fs, stringField(nodeInput, in))
	}
	for _, out := range outputs {
		fs = append(fs, stringField(nodeOutput, out))
	}
	b.n++
	fs = append(fs, stringField(nodeName, fmt.Sprintf("n%d", b.n)), stringField(nodeOpType, op))
	for _, a := range attrs {
		af := []field{stringField(attrName, a.Name)}
		switch {
		case a.Int != nil:
			af = append(af, varintField(3, uint64(*a.Int)), varintField(attrType, 2))
		case a.Float != nil:
			af = append(af, field{num: 2, typ: 5, v: uint64(math.Float32bits(*a.Float))}, varintField(attrType, 1))
		default:
			for _, v := range a.Ints {
				af = append(af, varintField(8, uint64(v)))
			}
			af = append(af, varintField(attrType, 7))
		}
		fs = append(fs, bytesField(nodeAttribute, encode(af)))
	}
	b.nodes = append(b.nodes, bytesField(graphNode, encode(fs)))
}

// Model returns the serialised model (IR version 8, opset 17).
func (b *Builder) Model(name string) []byte {
	graph := append(append([]field(nil), b.nodes...), stringField(graphName, name))
	graph = append(graph, b.inits...)
	graph = append(graph, b.inputs...)
	graph = append(graph, b.outputs...)
	opset := encode([]field{stringField(1, ""), varintField(2, 17)})
	m := []field{varintField(1, 8), stringField(2, "infergo-onnxedit"), bytesField(8, opset), bytesField(modelGraph, encode(graph))}
	return encode(m)
}
