// Package gpt2model writes a GPT-2-shaped decoder with random weights in optimum's
// decoder_with_past layout (input_ids, attention_mask, position_ids,
// past_key_values.{i}.key|value → logits, present.{i}.key|value), paired with the real GPT-2
// tokenizer, so text generation can be benchmarked at a realistic size (GPT-2 small: 12
// layers, hidden 768, 12 heads, 50,257 tokens, ~163M parameters with an untied output
// matrix) without downloading a model. Outputs are meaningless; compute is GPT-2's.
//
// The graph is written directly as ONNX protobuf (opset 20): embeddings, then per layer
// LayerNormalization, fused QKV projection, heads split, past concatenation (the present
// outputs), scaled dot-product attention under a padding mask and a causal mask (Trilu with
// k = past length), output projection, and a tanh-GELU MLP; a final LayerNormalization and
// the vocabulary projection.
package gpt2model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Shape is the model's size.
type Shape struct {
	Layers, Hidden, Heads, Vocab, Positions int
}

// Small is GPT-2 small (124M with tied embeddings; the output matrix here is separate).
var Small = Shape{Layers: 12, Hidden: 768, Heads: 12, Vocab: 50257, Positions: 1024}

// TokenizerSource is the real GPT-2 tokenizer (repository-relative).
const TokenizerSource = "testdata/fixtures/real-tokenizers/gpt2/tokenizer.json"

// Ensure writes the model repo into dir (config.json, generation_config.json,
// tokenizer.json, onnx/decoder_with_past_model.onnx) unless the graph is already there.
func Ensure(root, dir string, s Shape) (string, error) {
	graph := filepath.Join(dir, "onnx", "decoder_with_past_model.onnx")
	if _, err := os.Stat(graph); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(graph), 0o755); err != nil {
		return "", fmt.Errorf("gpt2model: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(root, TokenizerSource))
	if err != nil {
		return "", fmt.Errorf("gpt2model: %w", err)
	}
	files := map[string][]byte{
		"tokenizer.json": tok,
		"config.json": fmt.Appendf(nil, `{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_layer":%d,"n_embd":%d,"n_head":%d,"vocab_size":%d,"n_positions":%d,"bos_token_id":50256,"eos_token_id":50256}`+"\n",
			s.Layers, s.Hidden, s.Heads, s.Vocab, s.Positions),
		// No eos: random weights would end sequences at random lengths and blur the timing.
		"generation_config.json": []byte(`{"max_new_tokens":64,"eos_token_id":[]}` + "\n"),
		"tokenizer_config.json":  fmt.Appendf(nil, `{"model_max_length":%d}`+"\n", s.Positions),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", fmt.Errorf("gpt2model: %w", err)
		}
	}
	tmp := graph + ".tmp"
	if err := os.WriteFile(tmp, Build(s), 0o644); err != nil {
		return "", fmt.Errorf("gpt2model: %w", err)
	}
	if err := os.Rename(tmp, graph); err != nil {
		return "", fmt.Errorf("gpt2model: %w", err)
	}
	return dir, nil
}

// ONNX protobuf field numbers (onnx.proto3) and enum values used here.
const (
	fModelIR, fModelOpset, fModelProducer, fModelGraph = 1, 8, 2, 7
	fOpsetVersion                                      = 2
	fGraphNode, fGraphName, fGraphInit                 = 1, 2, 5
	fGraphInput, fGraphOutput                          = 11, 12
	fNodeIn, fNodeOut, fNodeName, fNodeOp, fNodeAttr   = 1, 2, 3, 4, 5
	fAttrName, fAttrF, fAttrI, fAttrS, fAttrT          = 1, 2, 3, 4, 5
	fAttrInts, fAttrType                               = 8, 20
	attrFloat, attrInt, attrString, attrTensor         = 1, 2, 3, 4
	attrInts                                           = 7
	fTensorDims, fTensorType, fTensorName, fTensorRaw  = 1, 2, 8, 9
	fValueName, fValueType                             = 1, 2
	fTypeTensor, fTTElem, fTTShape, fShapeDim          = 1, 1, 2, 1
	fDimValue, fDimParam                               = 1, 2
	tFloat, tInt64                                     = 1, 7
)

type builder struct {
	nodes, inits, inputs, outputs [][]byte
	n                             int
	rng                           *rand.Rand
}

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func intAttr(name string, v int64) []byte {
	b := bytesField(nil, fAttrName, []byte(name))
	b = varintField(b, fAttrI, uint64(v))
	return varintField(b, fAttrType, attrInt)
}

func intsAttr(name string, vs ...int64) []byte {
	b := bytesField(nil, fAttrName, []byte(name))
	for _, v := range vs {
		b = varintField(b, fAttrInts, uint64(v))
	}
	return varintField(b, fAttrType, attrInts)
}

func floatAttr(name string, v float32) []byte {
	b := bytesField(nil, fAttrName, []byte(name))
	b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(v))
	return varintField(b, fAttrType, attrFloat)
}

func stringAttr(name, v string) []byte {
	b := bytesField(nil, fAttrName, []byte(name))
	b = bytesField(b, fAttrS, []byte(v))
	return varintField(b, fAttrType, attrString)
}

func tensor(name string, dt uint64, dims []int64, raw []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = varintField(b, fTensorDims, uint64(d))
	}
	b = varintField(b, fTensorType, dt)
	b = bytesField(b, fTensorName, []byte(name))
	return bytesField(b, fTensorRaw, raw)
}

func tensorAttr(name string, t []byte) []byte {
	b := bytesField(nil, fAttrName, []byte(name))
	b = bytesField(b, fAttrT, t)
	return varintField(b, fAttrType, attrTensor)
}

// op adds a node and returns its outputs (named after the node unless given).
func (g *builder) op(op string, in []string, nOut int, attrs ...[]byte) []string {
	g.n++
	name := op + "_" + strconv.Itoa(g.n)
	out := make([]string, nOut)
	for i := range out {
		out[i] = name + "_out" + strconv.Itoa(i)
	}
	g.node(op, name, in, out, attrs...)
	return out
}

func (g *builder) op1(op string, in []string, attrs ...[]byte) string {
	return g.op(op, in, 1, attrs...)[0]
}

func (g *builder) node(op, name string, in, out []string, attrs ...[]byte) {
	var b []byte
	for _, s := range in {
		b = bytesField(b, fNodeIn, []byte(s))
	}
	for _, s := range out {
		b = bytesField(b, fNodeOut, []byte(s))
	}
	b = bytesField(b, fNodeName, []byte(name))
	b = bytesField(b, fNodeOp, []byte(op))
	for _, a := range attrs {
		b = bytesField(b, fNodeAttr, a)
	}
	g.nodes = append(g.nodes, b)
}

func (g *builder) ints(vals ...int64) string {
	g.n++
	name := "const_" + strconv.Itoa(g.n)
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	g.inits = append(g.inits, tensor(name, tInt64, []int64{int64(len(vals))}, raw))
	return name
}

func (g *builder) floats(dims []int64, fill func(i int) float32) string {
	g.n++
	name := "w_" + strconv.Itoa(g.n)
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	raw := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(fill(i)))
	}
	g.inits = append(g.inits, tensor(name, tFloat, dims, raw))
	return name
}

func (g *builder) normal(dims ...int64) string {
	return g.floats(dims, func(int) float32 { return float32(g.rng.NormFloat64() * 0.02) })
}

func (g *builder) constant(dims []int64, v float32) string {
	return g.floats(dims, func(int) float32 { return v })
}

func valueInfo(name string, elem uint64, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch d := d.(type) {
		case int:
			dim = varintField(nil, fDimValue, uint64(d))
		case string:
			dim = bytesField(nil, fDimParam, []byte(d))
		}
		shape = bytesField(shape, fShapeDim, dim)
	}
	tt := varintField(nil, fTTElem, elem)
	tt = bytesField(tt, fTTShape, shape)
	typ := bytesField(nil, fTypeTensor, tt)
	b := bytesField(nil, fValueName, []byte(name))
	return bytesField(b, fValueType, typ)
}

// Build returns the ONNX model bytes.
func Build(s Shape) []byte {
	g := &builder{rng: rand.New(rand.NewPCG(7, 11))}
	h, H, D := int64(s.Hidden), int64(s.Heads), int64(s.Hidden/s.Heads)
	g.inputs = append(g.inputs,
		valueInfo("input_ids", tInt64, "batch_size", "sequence_length"),
		valueInfo("attention_mask", tInt64, "batch_size", "total_length"),
		valueInfo("position_ids", tInt64, "batch_size", "sequence_length"))
	for i := 0; i < s.Layers; i++ {
		for _, kv := range []string{"key", "value"} {
			g.inputs = append(g.inputs, valueInfo(fmt.Sprintf("past_key_values.%d.%s", i, kv), tFloat, "batch_size", s.Heads, "past_sequence_length", s.Hidden/s.Heads))
		}
	}
	g.outputs = append(g.outputs, valueInfo("logits", tFloat, "batch_size", "sequence_length", s.Vocab))
	for i := 0; i < s.Layers; i++ {
		for _, kv := range []string{"key", "value"} {
			g.outputs = append(g.outputs, valueInfo(fmt.Sprintf("present.%d.%s", i, kv), tFloat, "batch_size", s.Heads, "total_length", s.Hidden/s.Heads))
		}
	}

	wte := g.normal(int64(s.Vocab), h)
	wpe := g.normal(int64(s.Positions), h)
	x := g.op1("Add", []string{g.op1("Gather", []string{wte, "input_ids"}), g.op1("Gather", []string{wpe, "position_ids"})})

	// Masks: padding from attention_mask ([b,1,1,t]) plus causal ([s,t], Trilu with k = past).
	seqLen := g.op1("Gather", []string{g.op1("Shape", []string{"input_ids"}), g.ints(1)}, intAttr("axis", 0))
	past := g.op1("Gather", []string{g.op1("Shape", []string{"past_key_values.0.key"}), g.ints(2)}, intAttr("axis", 0))
	total := g.op1("Add", []string{seqLen, past})
	one, big := g.constant([]int64{1}, 1), g.constant([]int64{1}, -1e9)
	am := g.op1("Cast", []string{"attention_mask"}, intAttr("to", tFloat))
	pad := g.op1("Mul", []string{g.op1("Sub", []string{one, am}), big})
	pad = g.op1("Unsqueeze", []string{pad, g.ints(1, 2)})
	ones := g.op1("ConstantOfShape", []string{g.op1("Concat", []string{seqLen, total}, intAttr("axis", 0))},
		tensorAttr("value", tensor("one", tFloat, []int64{1}, binary.LittleEndian.AppendUint32(nil, math.Float32bits(1)))))
	tri := g.op1("Trilu", []string{ones, g.op1("Squeeze", []string{past, g.ints(0)})}, intAttr("upper", 0))
	causal := g.op1("Mul", []string{g.op1("Sub", []string{one, tri}), big})
	bias := g.op1("Add", []string{pad, causal})

	heads := g.ints(0, 0, H, D)
	merge := g.ints(0, 0, h)
	split := g.ints(h, h, h)
	scale := g.constant([]int64{1}, float32(1/math.Sqrt(float64(D))))
	layerNorm := func(in string) string {
		return g.op1("LayerNormalization", []string{in, g.constant([]int64{h}, 1), g.constant([]int64{h}, 0)},
			intAttr("axis", -1), floatAttr("epsilon", 1e-5))
	}
	linear := func(in string, rows, cols int64) string {
		return g.op1("Add", []string{g.op1("MatMul", []string{in, g.normal(rows, cols)}), g.constant([]int64{cols}, 0)})
	}
	toHeads := func(in string) string {
		return g.op1("Transpose", []string{g.op1("Reshape", []string{in, heads})}, intsAttr("perm", 0, 2, 1, 3))
	}
	for i := 0; i < s.Layers; i++ {
		qkv := g.op("Split", []string{linear(layerNorm(x), h, 3*h), split}, 3, intAttr("axis", 2))
		q, k, v := toHeads(qkv[0]), toHeads(qkv[1]), toHeads(qkv[2])
		keys, values := fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i)
		g.node("Concat", keys, []string{fmt.Sprintf("past_key_values.%d.key", i), k}, []string{keys}, intAttr("axis", 2))
		g.node("Concat", values, []string{fmt.Sprintf("past_key_values.%d.value", i), v}, []string{values}, intAttr("axis", 2))
		kt := g.op1("Transpose", []string{keys}, intsAttr("perm", 0, 1, 3, 2))
		scores := g.op1("Add", []string{g.op1("Mul", []string{g.op1("MatMul", []string{q, kt}), scale}), bias})
		probs := g.op1("Softmax", []string{scores}, intAttr("axis", -1))
		att := g.op1("Transpose", []string{g.op1("MatMul", []string{probs, values})}, intsAttr("perm", 0, 2, 1, 3))
		x = g.op1("Add", []string{x, linear(g.op1("Reshape", []string{att, merge}), h, h)})
		mlp := g.op1("Gelu", []string{linear(layerNorm(x), h, 4*h)}, stringAttr("approximate", "tanh"))
		x = g.op1("Add", []string{x, linear(mlp, 4*h, h)})
	}
	g.node("MatMul", "lm_head", []string{layerNorm(x), g.normal(h, int64(s.Vocab))}, []string{"logits"})

	var graph []byte
	for _, n := range g.nodes {
		graph = bytesField(graph, fGraphNode, n)
	}
	graph = bytesField(graph, fGraphName, []byte("gpt2_with_past"))
	for _, t := range g.inits {
		graph = bytesField(graph, fGraphInit, t)
	}
	for _, v := range g.inputs {
		graph = bytesField(graph, fGraphInput, v)
	}
	for _, v := range g.outputs {
		graph = bytesField(graph, fGraphOutput, v)
	}
	model := varintField(nil, fModelIR, 9)
	model = bytesField(model, fModelProducer, []byte("infergo gpt2model"))
	model = bytesField(model, fModelOpset, varintField(nil, fOpsetVersion, 20))
	return bytesField(model, fModelGraph, graph)
}
