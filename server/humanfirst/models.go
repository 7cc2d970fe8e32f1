package humanfirst

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
	"github.com/infergo/infergo/server/humanfirst/pb/nlupb"
)

type discoveryService struct {
	integrationpb.UnimplementedDiscoveryServer
	s *Server
}

// GetCapabilities advertises both services and the real limits.
func (d discoveryService) GetCapabilities(context.Context, *integrationpb.GetCapabilitiesRequest) (*integrationpb.GetCapabilitiesResponse, error) {
	return &integrationpb.GetCapabilitiesResponse{
		SupportsModels:               true,
		SupportsWorkspaces:           true,
		MaxConcurrentModels:          d.s.cfg.MaxConcurrentModels,
		ModelClassificationBatchSize: uint32(d.s.cfg.ClassifyBatchSize),
	}, nil
}

type modelsService struct {
	integrationpb.UnimplementedModelsServer
	s *Server
}

// trainFormat is what GetTrainParameters asks for: HumanFirst JSON, gzipped (exports reach
// hundreds of MB), without empty intents. No hierarchical delimiter: HF JSON carries parent
// ids, from which full names are built here.
func trainFormat() (configpb.IntentsDataFormat, *configpb.IntentsDataOptions) {
	return configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON, &configpb.IntentsDataOptions{GzipEncoding: true, SkipEmptyIntents: true}
}

// checkFormat accepts HumanFirst JSON (and an unset format, from clients that leave the field
// out); zip archives are refused since only gzip is asked for.
func checkFormat(f configpb.IntentsDataFormat, o *configpb.IntentsDataOptions) error {
	if f != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON && f != configpb.IntentsDataFormat_INTENTS_FORMAT_INVALID {
		return invalidf("data_format %s is not supported: send INTENTS_FORMAT_HF_JSON", f)
	}
	if o.GetZipEncoding() {
		return invalidf("zip_encoding is not supported: send plain or gzip-encoded HumanFirst JSON")
	}
	return nil
}

// embedModel describes the served embedding model as a HumanFirst Model.
func (m modelsService) embedModel(info pipelines.Info) *integrationpb.Model {
	return &integrationpb.Model{
		Id:          info.ModelID,
		DisplayName: info.ModelID + " (embeddings)",
		Embeddings:  m.embedConfig(info),
	}
}

func (m modelsService) embedConfig(info pipelines.Info) *integrationpb.EmbedConfig {
	return &integrationpb.EmbedConfig{
		Dimensionality: uint32(info.Dimensions),
		MaxBatchSize:   uint32(m.s.cfg.EmbedBatchSize),
		MaxTokenCount:  uint32(info.MaxInputLength),
	}
}

// classifierModel describes a trained classifier; it can also embed while its embedding model
// is the one served.
func (m modelsService) classifierModel(cm *intent.Model, info pipelines.Info, served bool) *integrationpb.Model {
	out := &integrationpb.Model{
		Id:             cm.Meta.ID,
		DisplayName:    cm.Meta.DisplayName,
		Classification: &integrationpb.ClassificationConfig{MaxBatchSize: uint32(m.s.cfg.ClassifyBatchSize)},
	}
	if served && cm.Meta.Embedder.Matches(info) {
		out.Embeddings = m.embedConfig(info)
	}
	return out
}

// ListModels lists the prebuilt models: the served embedding model. Trained classifiers are
// not listed (HumanFirst keeps their ids from TrainModel; GetModel describes them).
func (m modelsService) ListModels(context.Context, *integrationpb.ListModelsRequest) (*integrationpb.ListModelsResponse, error) {
	_, info, err := m.s.embedder()
	if err != nil {
		return nil, err
	}
	return &integrationpb.ListModelsResponse{Models: []*integrationpb.Model{m.embedModel(info)}}, nil
}

// GetModel describes the embedding model or a trained classifier.
func (m modelsService) GetModel(_ context.Context, req *integrationpb.GetModelRequest) (*integrationpb.Model, error) {
	_, info, embErr := m.s.embedder()
	if embErr == nil && req.GetModelId() == info.ModelID {
		return m.embedModel(info), nil
	}
	cm, err := m.s.models.get(req.GetModelId())
	if err != nil {
		return nil, err
	}
	return m.classifierModel(cm, info, embErr == nil), nil
}

// GetTrainParameters asks for gzipped HumanFirst JSON.
func (m modelsService) GetTrainParameters(context.Context, *integrationpb.GetTrainParametersRequest) (*integrationpb.GetTrainParametersResponse, error) {
	f, o := trainFormat()
	return &integrationpb.GetTrainParametersResponse{DataFormat: f, FormatOptions: o}, nil
}

// TrainModel trains an intent classifier on the workspace export, synchronously: it returns
// when the model is saved. Cancellation or the deadline stops it and leaves nothing on disk.
func (m modelsService) TrainModel(ctx context.Context, req *integrationpb.TrainModelRequest) (*integrationpb.TrainModelResponse, error) {
	if err := checkFormat(req.GetDataFormat(), req.GetFormatOptions()); err != nil {
		return nil, err
	}
	if len(req.GetData()) == 0 {
		return nil, invalidf("data is empty: send the workspace export")
	}
	release, err := m.s.acquireTraining(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	emb, info, err := m.s.embedder()
	if err != nil {
		return nil, err
	}
	raw, err := intent.Decompress(req.GetData(), m.s.cfg.MaxWorkspaceBytes)
	if err != nil {
		return nil, err
	}
	ws, err := intent.ParseWorkspace(raw)
	if err != nil {
		return nil, err
	}
	opts := m.s.cfg.Train
	opts.Embed = m.s.embedConfig(info)
	start := time.Now()
	cm, err := intent.Train(ctx, emb, ws, opts)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	cm.Meta.ID = newModelID()
	cm.Meta.Embedder = intent.EmbedderInfo{ModelID: info.ModelID, Revision: info.Revision, Dimensions: cm.Meta.Dimensions}
	cm.Meta.Namespace, cm.Meta.IntegrationID = req.GetNamespace(), req.GetIntegrationId()
	cm.Meta.DisplayName = displayName(ws, len(cm.Meta.Classes))
	if err := m.s.models.save(ctx, cm); err != nil {
		return nil, err
	}
	st := cm.Meta.Stats
	m.s.log.InfoContext(ctx, "humanfirst: model trained", "model", cm.Meta.ID, "intents", st.Classes, "phrases", st.Phrases,
		"head", cm.Meta.Head, "epochs", st.Epochs, "train_accuracy", st.TrainAcc, "validation_accuracy", st.ValAcc,
		"embed", st.EmbedTime, "fit", st.FitTime, "total", time.Since(start), "warnings", len(cm.Meta.Warnings))
	for _, w := range cm.Meta.Warnings {
		m.s.log.WarnContext(ctx, "humanfirst: training warning", "model", cm.Meta.ID, "warning", w)
	}
	return &integrationpb.TrainModelResponse{Model: m.classifierModel(cm, info, true)}, nil
}

func displayName(ws *intent.Workspace, classes int) string {
	name := strings.TrimSpace(ws.Name)
	if name == "" {
		name = "Intent classifier"
	}
	return fmt.Sprintf("%s (%d intents)", name, classes)
}

// loadClassifier returns a trained model and the served embedder, which must be the one the
// model was trained with.
func (m modelsService) loadClassifier(id string) (*intent.Model, pipelines.Embedder, pipelines.Info, error) {
	cm, err := m.s.models.get(id)
	if err != nil {
		return nil, nil, pipelines.Info{}, err
	}
	emb, info, err := m.s.embedder()
	if err != nil {
		return nil, nil, info, err
	}
	if !cm.Meta.Embedder.Matches(info) {
		return nil, nil, info, fmt.Errorf("%w: model %s was trained on %s@%s, the server now serves %s@%s; train it again",
			ErrEmbedderChanged, id, cm.Meta.Embedder.ModelID, cm.Meta.Embedder.Revision, info.ModelID, info.Revision)
	}
	return cm, emb, info, nil
}

// Classify returns one Predictions per example, in order: intents by descending probability
// (those under MinScore left out) with HumanFirst's intent ids as id and name, and entities
// with UTF-8 byte spans. Blank examples get empty predictions rather than failing the batch.
func (m modelsService) Classify(ctx context.Context, req *integrationpb.ClassifyRequest) (*integrationpb.ClassifyResponse, error) {
	if n := len(req.GetExamples()); n > m.s.cfg.ClassifyBatchSize {
		return nil, invalidf("%d examples in one Classify request, the limit is %d", n, m.s.cfg.ClassifyBatchSize)
	}
	cm, emb, info, err := m.loadClassifier(req.GetModelId())
	if err != nil {
		return nil, err
	}
	var texts []string
	var at []int // response index of each text
	for i, ex := range req.GetExamples() {
		if strings.TrimSpace(ex.GetContents()) != "" {
			texts = append(texts, ex.GetContents())
			at = append(at, i)
		}
	}
	preds, err := cm.Classify(ctx, emb, texts, m.s.embedConfig(info))
	if err != nil {
		return nil, err
	}
	out := make([]*nlupb.Predictions, len(req.GetExamples()))
	for i := range out {
		out[i] = &nlupb.Predictions{}
	}
	for j, p := range preds {
		out[at[j]] = m.predictions(p)
	}
	return &integrationpb.ClassifyResponse{Predictions: out}, nil
}

func (m modelsService) predictions(p intent.Prediction) *nlupb.Predictions {
	out := &nlupb.Predictions{}
	for _, s := range p.Intents {
		if s.Score < m.s.cfg.MinScore {
			break // sorted: the rest are lower
		}
		// Both reference integrations put the intent id in id and name; the platform joins
		// on it.
		out.Matches = append(out.Matches, &nlupb.IntentMatch{Id: s.ID, Name: s.ID, Score: s.Score})
	}
	for _, e := range p.Entities {
		out.EntityMatches = append(out.EntityMatches, &nlupb.EntityMatch{
			Entity: &nlupb.EntityReference{Text: e.Text, Key: e.EntityName, Value: e.Value, EntityId: e.EntityID, EntityValueId: e.ValueID},
			Score:  e.Score,
			Span:   &nlupb.Span{Start: uint32(e.Start), End: uint32(e.End)},
		})
	}
	return out
}

// Embed returns the served model's vectors for the examples, flat in row-major order, with
// shape [examples, dimensions]. model_id may be empty, the embedding model's id, or a trained
// classifier's (whose embedding model must still be served).
func (m modelsService) Embed(ctx context.Context, req *integrationpb.EmbedRequest) (*integrationpb.EmbedResponse, error) {
	if n := len(req.GetExamples()); n > m.s.cfg.EmbedBatchSize {
		return nil, invalidf("%d examples in one Embed request, the limit is %d", n, m.s.cfg.EmbedBatchSize)
	}
	emb, info, err := m.s.embedder()
	if err != nil {
		return nil, err
	}
	if id := req.GetModelId(); id != "" && id != info.ModelID {
		if _, emb, info, err = m.loadClassifier(id); err != nil {
			return nil, err
		}
	}
	dim := info.Dimensions
	var data []float32
	if len(req.GetExamples()) > 0 {
		vecs, err := intent.EmbedTexts(ctx, emb, req.GetExamples(), m.s.embedConfig(info))
		if err != nil {
			return nil, err
		}
		dim = len(vecs[0])
		data = make([]float32, 0, len(vecs)*dim)
		for _, v := range vecs {
			data = append(data, v...)
		}
	}
	return &integrationpb.EmbedResponse{Data: data, Shape: []uint32{uint32(len(req.GetExamples())), uint32(dim)}}, nil
}

// UnloadModel drops a classifier from memory; it stays on disk and is reloaded on its next
// use. Idempotent.
func (m modelsService) UnloadModel(_ context.Context, req *integrationpb.UnloadModelRequest) (*integrationpb.UnloadModelResponse, error) {
	m.s.models.unload(req.GetModelId())
	return &integrationpb.UnloadModelResponse{}, nil
}

// DeleteModel removes a classifier from memory and disk. Idempotent.
func (m modelsService) DeleteModel(_ context.Context, req *integrationpb.DeleteModelRequest) (*integrationpb.DeleteModelResponse, error) {
	if err := m.s.models.delete(req.GetModelId()); err != nil {
		return nil, err
	}
	return &integrationpb.DeleteModelResponse{}, nil
}
