package humanfirst

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
	"github.com/infergo/infergo/server/humanfirst/pb/nlupb"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// trainAsPlatform does what Studio does: ask for the train parameters, encode the workspace
// accordingly, call TrainModel.
func trainAsPlatform(t testing.TB, ctx context.Context, c clients, workspace []byte) *integrationpb.Model {
	t.Helper()
	params, err := c.models.GetTrainParameters(ctx, &integrationpb.GetTrainParametersRequest{Namespace: "ns", IntegrationId: "int"})
	if err != nil {
		t.Fatal(err)
	}
	data := workspace
	if params.GetFormatOptions().GetGzipEncoding() {
		data = gzipBytes(t, workspace)
	}
	resp, err := c.models.TrainModel(ctx, &integrationpb.TrainModelRequest{Namespace: "ns", IntegrationId: "int",
		DataFormat: params.GetDataFormat(), FormatOptions: params.GetFormatOptions(), Data: data})
	if err != nil {
		t.Fatalf("TrainModel: %v", err)
	}
	return resp.GetModel()
}

func classify(ctx context.Context, c clients, id string, texts ...string) (*integrationpb.ClassifyResponse, error) {
	req := &integrationpb.ClassifyRequest{ModelId: id}
	for _, s := range texts {
		req.Examples = append(req.Examples, &nlupb.Example{Contents: s})
	}
	return c.models.Classify(ctx, req)
}

// checkPredictions checks the contract HumanFirst's evaluation relies on: one Predictions per
// example, intents sorted by descending score in [0.01, 1], ids from the training export.
func checkPredictions(t testing.TB, resp *integrationpb.ClassifyResponse, n int, intents map[string]bool) {
	t.Helper()
	if len(resp.GetPredictions()) != n {
		t.Fatalf("%d predictions for %d examples", len(resp.GetPredictions()), n)
	}
	for i, p := range resp.GetPredictions() {
		for j, m := range p.GetMatches() {
			if m.GetScore() < 0.01 || m.GetScore() > 1 || (j > 0 && m.GetScore() > p.GetMatches()[j-1].GetScore()) {
				t.Errorf("example %d: scores %v", i, p.GetMatches())
			}
			if !intents[m.GetId()] || m.GetName() != m.GetId() {
				t.Errorf("example %d: match %v is not a training intent id", i, m)
			}
		}
	}
}

// runFlow is the whole HumanFirst flow over mTLS against one embedder: capabilities, train,
// classify, embed, get, unload (and transparent reload), restart, delete. A real
// pipelines.Embedder plugs in here the same way as the fake one.
// runFlow drives the platform's flow; semantic also checks that the spec's greeting is
// classified as greet (an embedder with meaningful vectors is needed for that).
func runFlow(t *testing.T, provider EmbedderProvider, semantic bool) {
	dir := t.TempDir()
	pki := newPKI(t)
	ts := startServer(t, Config{Embedder: provider, DataDir: dir}, pki)
	c := ts.clients(t)
	ctx := testCtx(t)
	_, info, _ := provider()

	caps, err := c.discovery.GetCapabilities(ctx, &integrationpb.GetCapabilitiesRequest{})
	if err != nil || !caps.GetSupportsModels() || !caps.GetSupportsWorkspaces() || caps.GetModelClassificationBatchSize() != 1000 {
		t.Fatalf("capabilities %v, %v", caps, err)
	}
	params, err := c.models.GetTrainParameters(ctx, &integrationpb.GetTrainParametersRequest{})
	if err != nil || params.GetDataFormat() != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON || !params.GetFormatOptions().GetGzipEncoding() {
		t.Fatalf("train parameters %v, %v", params, err)
	}

	model := trainAsPlatform(t, ctx, c, intenttest.SpecWorkspace)
	if !modelIDPattern.MatchString(model.GetId()) || model.GetClassification().GetMaxBatchSize() != 1000 ||
		model.GetEmbeddings().GetDimensionality() != uint32(info.Dimensions) || model.GetDisplayName() == "" {
		t.Fatalf("trained model %v", model)
	}
	ws, _ := intent.ParseWorkspace(intenttest.SpecWorkspace)
	intents := map[string]bool{}
	for _, in := range ws.Intents {
		intents[in.ID] = true
	}

	texts := []string{intenttest.SpecUtterance, "goodbye, see you later", "", "are you a bot?"}
	resp, err := classify(ctx, c, model.GetId(), texts...)
	if err != nil {
		t.Fatal(err)
	}
	checkPredictions(t, resp, len(texts), intents)
	p := resp.GetPredictions()[0]
	if semantic && p.GetMatches()[0].GetId() != intenttest.SpecGreetIntentID {
		t.Errorf("top intent %v, want greet", p.GetMatches()[0])
	}
	if len(p.GetEntityMatches()) != 1 {
		t.Fatalf("entities %v", p.GetEntityMatches())
	}
	e := p.GetEntityMatches()[0]
	if e.GetEntity().GetEntityId() != intenttest.SpecTimeEntityID || e.GetEntity().GetEntityValueId() != intenttest.SpecMorningValue ||
		e.GetEntity().GetText() != "morning" || e.GetEntity().GetKey() != "timeofday" || e.GetEntity().GetValue() != "morning" ||
		e.GetSpan().GetStart() != intenttest.SpecMorningStart || e.GetSpan().GetEnd() != intenttest.SpecMorningEnd {
		t.Errorf("entity %v", e)
	}
	if len(resp.GetPredictions()[2].GetMatches()) != 0 {
		t.Errorf("blank example got matches %v", resp.GetPredictions()[2])
	}

	// Embed: the served model's vectors, flat, shape [n, dim], through the model id or the
	// embedding model's id.
	emb, _, _ := provider()
	want, _, err := emb.Embed(ctx, []string{"hello", "good morning"}, pipelines.EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{model.GetId(), info.ModelID, ""} {
		er, err := c.models.Embed(ctx, &integrationpb.EmbedRequest{ModelId: id, Examples: []string{"hello", "good morning"}})
		if err != nil {
			t.Fatalf("Embed(%q): %v", id, err)
		}
		if !slices.Equal(er.GetShape(), []uint32{2, uint32(info.Dimensions)}) || len(er.GetData()) != 2*info.Dimensions ||
			!slices.Equal(er.GetData()[:info.Dimensions], want[0]) || !slices.Equal(er.GetData()[info.Dimensions:], want[1]) {
			t.Errorf("Embed(%q): shape %v, %d values", id, er.GetShape(), len(er.GetData()))
		}
	}

	list, err := c.models.ListModels(ctx, &integrationpb.ListModelsRequest{})
	if err != nil || len(list.GetModels()) != 1 || list.GetModels()[0].GetId() != info.ModelID || list.GetModels()[0].GetEmbeddings() == nil {
		t.Errorf("ListModels %v, %v", list, err)
	}
	got, err := c.models.GetModel(ctx, &integrationpb.GetModelRequest{ModelId: model.GetId()})
	if err != nil || !proto.Equal(got, model) {
		t.Errorf("GetModel %v, %v; want %v", got, err, model)
	}

	// Unload, then classify again: reloaded from disk, same answer.
	for range 2 { // idempotent
		if _, err := c.models.UnloadModel(ctx, &integrationpb.UnloadModelRequest{ModelId: model.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := classify(ctx, c, model.GetId(), texts...)
	if err != nil || !proto.Equal(again, resp) {
		t.Errorf("after unload: %v, %v", again, err)
	}

	// A new server over the same data directory still knows the model.
	ts2 := startServer(t, Config{Embedder: provider, DataDir: dir}, pki)
	c2 := ts2.clients(t)
	again, err = classify(ctx, c2, model.GetId(), texts...)
	if err != nil || !proto.Equal(again, resp) {
		t.Errorf("after restart: %v, %v", again, err)
	}

	ts2.Stop() // one server per data directory: the second one's memory would outlive the delete

	for range 2 { // idempotent
		if _, err := c.models.DeleteModel(ctx, &integrationpb.DeleteModelRequest{ModelId: model.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := classify(ctx, c, model.GetId(), "hi"); status.Code(err) != codes.NotFound {
		t.Errorf("classify after delete: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "models")); len(entries) != 0 {
		t.Errorf("models directory after delete: %v", entries)
	}
}

func TestFlowHashEmbedder(t *testing.T) {
	runFlow(t, (&intenttest.HashEmbedder{}).Provider(), true)
}

func TestHealthAndReflection(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	conn := ts.dial(t)
	ctx := testCtx(t)
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range append([]string{""}, services...) {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, %v", svc, r, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range append(services, "grpc.health.v1.Health") {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	stream.CloseSend()
}

// TestConcurrentClassify: many clients classifying with one model at once get the answers a
// lone client gets.
func TestConcurrentClassify(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	syn := intenttest.SyntheticWorkspace(10, 20, 10, false, 11)
	model := trainAsPlatform(t, ctx, c, syn.JSON)
	texts := make([]string, len(syn.Holdout))
	for i, h := range syn.Holdout {
		texts[i] = h.Text
	}
	want, err := classify(ctx, c, model.GetId(), texts...)
	if err != nil {
		t.Fatal(err)
	}
	ts.models.unload(model.GetId()) // the concurrent calls also race on the lazy reload
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := c
			if g%2 == 1 {
				cc = ts.clients(t) // separate connections too
			}
			for range 4 {
				got, err := classify(ctx, cc, model.GetId(), texts...)
				if err != nil {
					errs <- err
					return
				}
				if !proto.Equal(got, want) {
					errs <- fmt.Errorf("concurrent answer differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTrainQualityOverGRPC trains a synthetic intent set through the service and scores the
// held-out phrases, as Studio's evaluation does.
func TestTrainQualityOverGRPC(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	syn := intenttest.SyntheticWorkspace(20, 30, 10, false, 2)
	model := trainAsPlatform(t, ctx, c, syn.JSON)
	texts := make([]string, len(syn.Holdout))
	for i, h := range syn.Holdout {
		texts[i] = h.Text
	}
	resp, err := classify(ctx, c, model.GetId(), texts...)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i, p := range resp.GetPredictions() {
		if len(p.GetMatches()) > 0 && p.GetMatches()[0].GetId() == syn.Holdout[i].IntentID {
			ok++
		}
	}
	if acc := float64(ok) / float64(len(texts)); acc < 0.7 { // chance: 0.05
		t.Errorf("held-out accuracy %.3f", acc)
	}
	m, err := ts.models.get(model.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.Stats.TrainAcc < 0.95 {
		t.Errorf("training accuracy %.3f", m.Meta.Stats.TrainAcc)
	}
}

// TestPlatformKFold runs Studio's evaluation sequence (per fold: TrainModel on the rest,
// Classify the held-out phrases, DeleteModel) and checks that the embedding cache spares the
// embedding model from seeing any phrase twice.
func TestPlatformKFold(t *testing.T) {
	emb := &intenttest.HashEmbedder{}
	ts := startServer(t, Config{Embedder: emb.Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	syn := intenttest.SyntheticWorkspace(8, 15, 0, false, 4)
	ws, _ := intent.ParseWorkspace(syn.JSON)
	const folds = 3
	correct, total := 0, 0
	for f := range folds {
		train := *ws
		train.Examples = nil
		var held []intent.Phrase
		for i, ex := range ws.Examples {
			if i%folds == f {
				held = append(held, ex)
			} else {
				train.Examples = append(train.Examples, ex)
			}
		}
		data, _ := json.Marshal(&train)
		model := trainAsPlatform(t, ctx, c, data)
		texts := make([]string, len(held))
		for i, h := range held {
			texts[i] = h.Text
		}
		resp, err := classify(ctx, c, model.GetId(), texts...)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range resp.GetPredictions() {
			total++
			if p.GetMatches()[0].GetId() == held[i].Intents[0].IntentID {
				correct++
			}
		}
		if _, err := c.models.DeleteModel(ctx, &integrationpb.DeleteModelRequest{ModelId: model.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	if n := emb.Texts.Load(); n != int64(len(ws.Examples)) {
		t.Errorf("embedding model saw %d texts for %d distinct phrases", n, len(ws.Examples))
	}
	if acc := float64(correct) / float64(total); acc < 0.6 {
		t.Errorf("k-fold accuracy %.3f", acc)
	}
}
