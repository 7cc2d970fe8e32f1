package onnxedit

import (
	"errors"
	"fmt"
	"strings"
)

// MergeDecoders builds a merged decoder in optimum's layout (decoder_model_merged.onnx) from
// a decoder without past (noPast: the prompt pass, e.g. decoder_model.onnx) and one with
// past (withPast: decoder_with_past_model.onnx). The result has the union of both graphs'
// inputs plus a bool use_cache_branch [1], and noPast's outputs; one If node runs withPast's
// graph when use_cache_branch is true and noPast's otherwise. Outputs the with-past graph
// lacks (Whisper's present.*.encoder.*, constant after the prompt) are passed through from
// the matching past_key_values.* inputs, as optimum does. Each branch keeps its own weights
// (optimum deduplicates them; that saves disk, not behaviour).
func MergeDecoders(noPast, withPast []byte) ([]byte, error) {
	a, err := parseModel(noPast)
	if err != nil {
		return nil, fmt.Errorf("onnxedit: no-past decoder: %w", err)
	}
	b, err := parseModel(withPast)
	if err != nil {
		return nil, fmt.Errorf("onnxedit: with-past decoder: %w", err)
	}
	aIn, aInRaw, err := valueInfos(a.graph, graphInput)
	if err != nil {
		return nil, err
	}
	bIn, bInRaw, err := valueInfos(b.graph, graphInput)
	if err != nil {
		return nil, err
	}
	aOut, aOutRaw, err := valueInfos(a.graph, graphOutput)
	if err != nil {
		return nil, err
	}
	_, bOutRaw, err := valueInfos(b.graph, graphOutput)
	if err != nil {
		return nil, err
	}

	elseGraph, err := branch(a.graph, "else_")
	if err != nil {
		return nil, err
	}
	thenGraph, err := branch(b.graph, "then_")
	if err != nil {
		return nil, err
	}
	// The then branch must produce noPast's outputs, in noPast's order.
	var thenOuts []field
	for _, name := range aOut {
		if raw, ok := bOutRaw[name]; ok {
			vi, err := renameValueInfo(raw, "then_"+name)
			if err != nil {
				return nil, err
			}
			thenOuts = append(thenOuts, bytesField(graphOutput, vi))
			continue
		}
		past := strings.Replace(name, "present.", "past_key_values.", 1)
		if _, ok := bInRaw[past]; !ok || past == name {
			return nil, fmt.Errorf("onnxedit: the with-past decoder has no output %q and no input %q to pass through", name, past)
		}
		node := encode([]field{stringField(nodeInput, past), stringField(nodeOutput, "then_"+name),
			stringField(nodeName, "then_passthrough_"+name), stringField(nodeOpType, "Identity")})
		thenGraph = append(thenGraph, bytesField(graphNode, node))
		vi, err := renameValueInfo(aOutRaw[name], "then_"+name)
		if err != nil {
			return nil, err
		}
		thenOuts = append(thenOuts, bytesField(graphOutput, vi))
	}
	thenGraph = append(thenGraph, thenOuts...)
	for _, name := range aOut {
		vi, err := renameValueInfo(aOutRaw[name], "else_"+name)
		if err != nil {
			return nil, err
		}
		elseGraph = append(elseGraph, bytesField(graphOutput, vi))
	}

	ifNode := []field{stringField(nodeInput, "use_cache_branch")}
	for _, name := range aOut {
		ifNode = append(ifNode, stringField(nodeOutput, name))
	}
	ifNode = append(ifNode, stringField(nodeName, "optimum::if"), stringField(nodeOpType, "If"),
		bytesField(nodeAttribute, encode([]field{stringField(attrName, "then_branch"),
			varintField(attrType, attrTypeGraph), bytesField(attrGraph, encode(thenGraph))})),
		bytesField(nodeAttribute, encode([]field{stringField(attrName, "else_branch"),
			varintField(attrType, attrTypeGraph), bytesField(attrGraph, encode(elseGraph))})))

	outer := []field{bytesField(graphNode, encode(ifNode)), stringField(graphName, "merged_decoder")}
	seen := map[string]bool{}
	for _, name := range aIn {
		outer = append(outer, bytesField(graphInput, aInRaw[name]))
		seen[name] = true
	}
	for _, name := range bIn {
		if !seen[name] {
			outer = append(outer, bytesField(graphInput, bInRaw[name]))
			seen[name] = true
		}
	}
	outer = append(outer, bytesField(graphInput, boolScalarInput("use_cache_branch")))
	for _, name := range aOut {
		outer = append(outer, bytesField(graphOutput, aOutRaw[name]))
	}
	out := encode(a.fields)
	return appendField(out, bytesField(modelGraph, encode(outer))), nil
}

// branch turns a top-level graph into an If branch body: its inputs become references to the
// outer scope (same names) and every name it defines (node outputs, initializers) gets
// prefix, so the two branches and the outer graph never share a name. Outputs are left for
// the caller to add.
func branch(graph []field, prefix string) ([]field, error) {
	defined := map[string]bool{}
	for _, f := range graph {
		switch f.num {
		case graphNode:
			nf, err := parse(f.raw)
			if err != nil {
				return nil, err
			}
			for _, x := range nf {
				if x.num == nodeOutput && len(x.raw) > 0 {
					defined[string(x.raw)] = true
				}
			}
		case graphInitializer:
			tf, err := parse(f.raw)
			if err != nil {
				return nil, err
			}
			for _, x := range tf {
				if x.num == tensorName {
					defined[string(x.raw)] = true
				}
			}
		case graphSparseInit:
			return nil, errors.New("onnxedit: sparse initializers are not supported")
		}
	}
	rename := func(s string) string {
		if defined[s] {
			return prefix + s
		}
		return s
	}
	var out []field
	for _, f := range graph {
		switch f.num {
		case graphInput, graphOutput:
			// Inputs come from the outer scope; outputs are added by the caller.
		case graphName:
			out = append(out, stringField(graphName, prefix+"graph"))
		case graphNode:
			nf, err := parse(f.raw)
			if err != nil {
				return nil, err
			}
			for i, x := range nf {
				switch x.num {
				case nodeInput, nodeOutput:
					if len(x.raw) > 0 {
						nf[i].raw = []byte(rename(string(x.raw)))
					}
				case nodeName:
					nf[i].raw = []byte(prefix + string(x.raw))
				case nodeAttribute:
					af, err := parse(x.raw)
					if err != nil {
						return nil, err
					}
					for _, y := range af {
						if y.num == attrGraph || y.num == attrGraphs {
							return nil, errors.New("onnxedit: nested subgraphs are not supported")
						}
					}
				}
			}
			out = append(out, bytesField(graphNode, encode(nf)))
		case graphInitializer:
			tf, err := parse(f.raw)
			if err != nil {
				return nil, err
			}
			for i, x := range tf {
				if x.num == tensorName {
					tf[i].raw = []byte(prefix + string(x.raw))
				}
			}
			out = append(out, bytesField(graphInitializer, encode(tf)))
		case graphValueInfo:
			vf, err := parse(f.raw)
			if err != nil {
				return nil, err
			}
			for i, x := range vf {
				if x.num == valueName {
					vf[i].raw = []byte(rename(string(x.raw)))
				}
			}
			out = append(out, bytesField(graphValueInfo, encode(vf)))
		default:
			out = append(out, f)
		}
	}
	return out, nil
}

// renameValueInfo returns a ValueInfoProto with another name and the same type.
func renameValueInfo(raw []byte, name string) ([]byte, error) {
	vf, err := parse(raw)
	if err != nil {
		return nil, err
	}
	for i, x := range vf {
		if x.num == valueName {
			vf[i].raw = []byte(name)
		}
	}
	return encode(vf), nil
}

// boolScalarInput is a ValueInfoProto for a bool tensor of shape [1].
func boolScalarInput(name string) []byte {
	const (
		typeTensor  = 1
		tensorElem  = 1
		tensorShape = 2
		shapeDim    = 1
		dimValue    = 1
		elemBool    = 9
	)
	dim := encode([]field{varintField(dimValue, 1)})
	shape := encode([]field{bytesField(shapeDim, dim)})
	tensor := encode([]field{varintField(tensorElem, elemBool), bytesField(tensorShape, shape)})
	typ := encode([]field{bytesField(typeTensor, tensor)})
	return encode([]field{stringField(valueName, name), bytesField(valueType, typ)})
}
