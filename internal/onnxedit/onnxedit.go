// Package onnxedit rewrites ONNX models at the protobuf wire level, without generated ONNX
// bindings: enough to build the graphs tests and benchmarks need from the shipped fixtures,
// such as optimum's merged decoder (decoder_model_merged.onnx) from decoder_model.onnx and
// decoder_with_past_model.onnx. Unknown fields are carried over byte for byte.
package onnxedit

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto3 used here.
const (
	modelGraph = 7

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13
	graphSparseInit  = 15

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5

	attrName   = 1
	attrGraph  = 6
	attrGraphs = 11
	attrType   = 20

	valueName = 1
	valueType = 2

	tensorName = 8

	attrTypeGraph = 5
)

// field is one raw protobuf field.
type field struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the value's bytes: the payload for length-delimited fields
	v   uint64 // varint / fixed values
}

// parse splits a message into its fields.
func parse(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			f.raw, n = v, m
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			f.v, n = v, m
		case protowire.Fixed32Type:
			v, m := protowire.ConsumeFixed32(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			f.v, n = uint64(v), m
		case protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			f.v, n = v, m
		default:
			return nil, fmt.Errorf("onnxedit: unsupported wire type %d", typ)
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}

// appendField writes f back.
func appendField(b []byte, f field) []byte {
	b = protowire.AppendTag(b, f.num, f.typ)
	switch f.typ {
	case protowire.BytesType:
		return protowire.AppendBytes(b, f.raw)
	case protowire.VarintType:
		return protowire.AppendVarint(b, f.v)
	case protowire.Fixed32Type:
		return protowire.AppendFixed32(b, uint32(f.v))
	default:
		return protowire.AppendFixed64(b, f.v)
	}
}

func bytesField(num protowire.Number, v []byte) field {
	return field{num: num, typ: protowire.BytesType, raw: v}
}

func stringField(num protowire.Number, s string) field { return bytesField(num, []byte(s)) }

func varintField(num protowire.Number, v uint64) field {
	return field{num: num, typ: protowire.VarintType, v: v}
}

func encode(fs []field) []byte {
	var b []byte
	for _, f := range fs {
		b = appendField(b, f)
	}
	return b
}

// model is a parsed ModelProto with its graph split out.
type model struct {
	fields []field // everything but the graph
	graph  []field
}

func parseModel(b []byte) (*model, error) {
	fs, err := parse(b)
	if err != nil {
		return nil, err
	}
	m := &model{}
	for _, f := range fs {
		if f.num == modelGraph {
			if m.graph, err = parse(f.raw); err != nil {
				return nil, fmt.Errorf("onnxedit: graph: %w", err)
			}
			continue
		}
		m.fields = append(m.fields, f)
	}
	if m.graph == nil {
		return nil, errors.New("onnxedit: model has no graph")
	}
	return m, nil
}

// valueInfos returns the ValueInfoProto messages of field num of a graph, by name.
func valueInfos(graph []field, num protowire.Number) (names []string, raw map[string][]byte, err error) {
	raw = map[string][]byte{}
	for _, f := range graph {
		if f.num != num {
			continue
		}
		vf, err := parse(f.raw)
		if err != nil {
			return nil, nil, err
		}
		for _, x := range vf {
			if x.num == valueName {
				names = append(names, string(x.raw))
				raw[string(x.raw)] = f.raw
			}
		}
	}
	return names, raw, nil
}
