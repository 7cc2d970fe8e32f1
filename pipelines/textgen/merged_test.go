package textgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/infergo/infergo/runtime/sched"
)

// The fixture has no decoder_model_merged.onnx, so the merged-decoder protocol is tested on
// one built here the way optimum builds it (graph_transformations.merge_decoders): an If on
// use_cache_branch whose then-branch is the with-past decoder and whose else-branch is the
// prompt decoder. Both branches are made from decoder_with_past_model.onnx; the else-branch
// first cuts every past input to length 0, as a decoder without past effectively does, so a
// decoder that set use_cache_branch=false on a step with a real past would lose its cache
// and produce other tokens.

// ONNX protobuf field numbers used below (onnx.proto3).
const (
	mGraph      = 7
	gNode       = 1
	gName       = 2
	gInit       = 5
	gInput      = 11
	gOutput     = 12
	nInput      = 1
	nOutput     = 2
	nName       = 3
	nOpType     = 4
	nAttr       = 5
	aName       = 1
	aG          = 6
	aType       = 20
	attrGraph   = 5
	vName       = 1
	vType       = 2
	tTensor     = 1
	ttElem      = 1
	ttShape     = 2
	shDim       = 1
	dimValue    = 1
	tDims       = 1
	tDataType   = 2
	tInt64Data  = 7
	tName       = 8
	elemInt64   = 7
	elemBoolean = 9
)

type field struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the whole field, tag included
	val []byte // bytes payload (length-delimited fields)
}

func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(m))
		}
		f := field{num: num, typ: typ, raw: b[:n+m]}
		if typ == protowire.BytesType {
			f.val, _ = protowire.ConsumeBytes(b[n:])
		}
		out = append(out, f)
		b = b[n+m:]
	}
	return out
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	return appendBytes(b, num, []byte(s))
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// valueName returns a ValueInfoProto's name.
func valueName(t *testing.T, vi []byte) string {
	for _, f := range fields(t, vi) {
		if f.num == vName {
			return string(f.val)
		}
	}
	return ""
}

// int64Tensor is a named 1-D int64 initializer.
func int64Tensor(name string, v int64) []byte {
	var b []byte
	b = appendVarint(b, tDims, 1)
	b = appendVarint(b, tDataType, elemInt64)
	b = appendVarint(b, tInt64Data, uint64(v))
	return appendString(b, tName, name)
}

func node(op, name string, in, out []string, attrs ...[]byte) []byte {
	var b []byte
	for _, s := range in {
		b = appendString(b, nInput, s)
	}
	for _, s := range out {
		b = appendString(b, nOutput, s)
	}
	b = appendString(b, nName, name)
	b = appendString(b, nOpType, op)
	for _, a := range attrs {
		b = appendBytes(b, nAttr, a)
	}
	return b
}

func graphAttr(name string, g []byte) []byte {
	var b []byte
	b = appendString(b, aName, name)
	b = appendBytes(b, aG, g)
	return appendVarint(b, aType, attrGraph)
}

// renameInputs rewrites a NodeProto's inputs through ren.
func renameInputs(t *testing.T, n []byte, ren map[string]string) []byte {
	var b []byte
	for _, f := range fields(t, n) {
		if f.num == nInput {
			if to, ok := ren[string(f.val)]; ok {
				b = appendString(b, nInput, to)
				continue
			}
		}
		b = append(b, f.raw...)
	}
	return b
}

// buildMerged writes decoder_model_merged.onnx built from withPast into dir.
func buildMerged(t *testing.T, withPast, dir string) string {
	t.Helper()
	model, err := os.ReadFile(withPast)
	if err != nil {
		t.Fatal(err)
	}
	var graph []byte
	var modelRest [][]byte
	for _, f := range fields(t, model) {
		if f.num == mGraph {
			graph = f.val
		} else {
			modelRest = append(modelRest, f.raw)
		}
	}
	var nodes, inits, inputs, outputs [][]byte
	for _, f := range fields(t, graph) {
		switch f.num {
		case gNode:
			nodes = append(nodes, f.val)
		case gInit:
			inits = append(inits, f.raw)
		case gInput:
			inputs = append(inputs, f.raw)
		case gOutput:
			outputs = append(outputs, f.raw)
		}
	}
	var outNames []string
	for _, o := range outputs {
		outNames = append(outNames, valueName(t, fields(t, o)[0].val))
	}

	// then: the with-past decoder as is.
	var then []byte
	for _, n := range nodes {
		then = appendBytes(then, gNode, n)
	}
	then = appendString(then, gName, "with_past")
	for _, o := range outputs {
		then = append(then, o...)
	}
	// else: past inputs cut to length 0 first.
	var els []byte
	ren := map[string]string{}
	els = appendBytes(els, gInit, int64Tensor("zero_i64", 0))
	els = appendBytes(els, gInit, int64Tensor("axis_past", 2))
	for _, in := range inputs {
		name := valueName(t, fields(t, in)[0].val)
		if len(name) > 16 && name[:16] == "past_key_values." {
			ren[name] = name + ".empty"
			els = appendBytes(els, gNode, node("Slice", "cut_"+name, []string{name, "zero_i64", "zero_i64", "axis_past"}, []string{name + ".empty"}))
		}
	}
	for _, n := range nodes {
		els = appendBytes(els, gNode, renameInputs(t, n, ren))
	}
	els = appendString(els, gName, "no_past")
	for _, o := range outputs {
		els = append(els, o...)
	}

	// use_cache_branch: bool [1].
	var dim, shape, tensor, typ, vi []byte
	dim = appendVarint(dim, dimValue, 1)
	shape = appendBytes(shape, shDim, dim)
	tensor = appendVarint(tensor, ttElem, elemBoolean)
	tensor = appendBytes(tensor, ttShape, shape)
	typ = appendBytes(typ, tTensor, tensor)
	vi = appendString(vi, vName, "use_cache_branch")
	vi = appendBytes(vi, vType, typ)

	var outer []byte
	outer = appendBytes(outer, gNode, node("If", "optimum::if", []string{"use_cache_branch"}, outNames,
		graphAttr("then_branch", then), graphAttr("else_branch", els)))
	outer = appendString(outer, gName, "merged_decoder")
	for _, i := range inits {
		outer = append(outer, i...)
	}
	for _, in := range inputs {
		outer = append(outer, in...)
	}
	outer = appendBytes(outer, gInput, vi)
	for _, o := range outputs {
		outer = append(outer, o...)
	}
	var out []byte
	for _, r := range modelRest {
		out = append(out, r...)
	}
	out = appendBytes(out, mGraph, outer)
	path := filepath.Join(dir, "decoder_model_merged.onnx")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMergedDecoderParity(t *testing.T) {
	g := loadGolden(t)
	path := buildMerged(t, fixtureGraph("decoder_with_past_model.onnx"), t.TempDir())
	l, d := loopFor(t, path, sched.DecodeConfig{})
	if d.Layout() != Merged {
		t.Fatalf("layout %v", d.Layout())
	}
	for _, c := range g.Greedy {
		got := generate(t, l, c.PromptIDs, len(c.NewIDs), greedy, nil)
		if fmt.Sprint(got) != fmt.Sprint(c.NewIDs) {
			t.Errorf("%q:\n got %v\nwant %v", c.Prompt, got, c.NewIDs)
		}
	}
	// The branches differ: feeding use_cache_branch=false with a past loses the cache.
	bad, bd := loopFor(t, path, sched.DecodeConfig{})
	bd.useCacheTrue = bd.useCacheFalse
	c := g.Greedy[0]
	tk, _ := bad.Admit()
	sts, err := tk.Start(context.Background(), &sched.Seq{Cost: 40, MaxSteps: len(c.NewIDs), State: NewSequence(c.PromptIDs, greedy, nil, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	for {
		tok, err := sts[0].Next(context.Background())
		if err != nil {
			// io.EOF: all tokens came, and they must differ; else ONNX Runtime refused the
			// shorter present (the else-branch dropped the cache): also a detection.
			if err == io.EOF && fmt.Sprint(got) == fmt.Sprint(c.NewIDs) {
				t.Errorf("a wrong use_cache_branch still matched: the test graph does not tell the branches apart")
			}
			break
		}
		got = append(got, tok.ID)
	}
}
