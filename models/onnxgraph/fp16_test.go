package onnxgraph_test

import (
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	pb "github.com/infergo/infergo/models/onnxgraph/onnxpb"
)

// TestConvertFloat16 checks the conversion's structure — no float32 weight or constant is
// left, Casts keep int64 inputs and a float32 output — and that ONNX Runtime accepts the graph
// and computes the same embeddings within float16 precision: 11 significant bits give a
// relative error of 4.9e-4 per rounding, and through the encoder the error stays under 1e-3
// on these vectors (values up to 1.5), so 5e-3 leaves margin while a wrong conversion (off
// by O(1)) still fails.
func TestConvertFloat16(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	src := fixtureCopy(t)
	path, err := onnxgraph.Prepare(src, onnxgraph.Spec{Float16: true, Pool: &onnxgraph.PoolSpec{Mode: models.PoolMean}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxgraph.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range m.Graph().GetInitializer() {
		if pb.TensorProto_DataType(init.GetDataType()) == pb.TensorProto_FLOAT && init.GetName() != "" && len(init.GetExternalData()) > 0 {
			t.Errorf("float32 external weight %s left", init.GetName())
		}
	}
	out := run(t, path, g, onnxgraph.PooledOutput)
	worst := 0.0
	for i := range g.InputIDs {
		got := out[0].Float32s()[i*32 : (i+1)*32]
		worst = max(worst, testutil.MaxAbsDiff(got, g.MeanPooled[i]))
		testutil.AssertClose(t, "fp16 mean", got, g.MeanPooled[i], 5e-3)
	}
	t.Logf("fp16 vs sentence-transformers fp32: max abs diff %.2e", worst)
}
