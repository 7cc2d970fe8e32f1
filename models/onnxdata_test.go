package models

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Minimal protobuf writers to build ONNX models by hand.
func pbVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pbBytes(field int, payload []byte) []byte {
	b := pbVarint(nil, uint64(field)<<3|2)
	b = pbVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func pbInt(field int, v uint64) []byte { return pbVarint(pbVarint(nil, uint64(field)<<3), v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func externalTensor(name, location string, external bool) []byte {
	t := cat(pbInt(1, 4), pbInt(2, 1), pbBytes(8, []byte(name)),
		pbBytes(13, cat(pbBytes(1, []byte("location")), pbBytes(2, []byte(location)))),
		pbBytes(13, cat(pbBytes(1, []byte("offset")), pbBytes(2, []byte("4096")))))
	if external {
		t = append(t, pbInt(14, 1)...)
	}
	return t
}

func TestExternalLocationsSynthetic(t *testing.T) {
	// A merged decoder: an If node whose branches (attribute graphs) hold initializers too.
	then := cat(pbBytes(5, externalTensor("w_then", "branch.bin", true)))
	elseG := cat(pbBytes(5, externalTensor("w_else", "model.onnx_data", true)))
	node := cat(pbBytes(4, []byte("If")),
		pbBytes(5, cat(pbBytes(1, []byte("then_branch")), pbBytes(6, then))),
		pbBytes(5, cat(pbBytes(1, []byte("else_branch")), pbBytes(11, elseG))),
		pbBytes(5, cat(pbBytes(1, []byte("value")), pbBytes(5, externalTensor("c", "const.bin", true)))))
	sparse := cat(pbBytes(1, externalTensor("sv", "sparse.bin", true)), pbBytes(2, externalTensor("si", "inline.bin", false)))
	graph := cat(pbBytes(1, node),
		pbBytes(5, externalTensor("w", "model.onnx_data", true)),
		pbBytes(5, cat(pbBytes(8, []byte("inline")), pbBytes(9, bytes.Repeat([]byte{7}, 100000)))),
		pbBytes(5, externalTensor("not_external", "ignored.bin", false)),
		pbBytes(15, sparse),
		pbBytes(2, []byte("main")))
	model := cat(pbInt(1, 8), pbBytes(2, []byte("test")), pbBytes(7, graph), pbBytes(14, cat(pbBytes(1, []byte("k")), pbBytes(2, []byte("v")))))
	got, err := externalLocations(bytes.NewReader(model), int64(len(model)))
	want := []string{"branch.bin", "const.bin", "model.onnx_data", "sparse.bin"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%q, %v; want %q", got, err, want)
	}
}

func TestExternalLocationsMalformed(t *testing.T) {
	graph := pbBytes(5, externalTensor("w", "x", true))
	for name, b := range map[string][]byte{
		"truncated":      pbBytes(7, graph)[:10],
		"overrun":        append(pbVarint(nil, 7<<3|2), 0xff, 0x01),
		"group":          pbVarint(nil, 7<<3|3),
		"field zero":     {0x02, 0x00},
		"long varint":    bytes.Repeat([]byte{0xff}, 12),
		"deep subgraphs": deepGraphs(70),
	} {
		if _, err := externalLocations(bytes.NewReader(b), int64(len(b))); !errors.Is(err, errPBMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := externalLocations(bytes.NewReader(nil), 0); err != nil || len(got) != 0 {
		t.Errorf("empty: %q, %v", got, err)
	}
}

func deepGraphs(n int) []byte {
	g := []byte{}
	for range n {
		g = pbBytes(1, pbBytes(5, pbBytes(6, g))) // node → attribute → g
	}
	return pbBytes(7, g)
}
