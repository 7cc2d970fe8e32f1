// Package intent trains and runs intent classifiers on sentence embeddings, for HumanFirst's
// custom-integration Models service and the `infergo humanfirst evaluate` command.
//
// A workspace in HumanFirst JSON is parsed (ParseWorkspace), its labeled phrases embedded with
// the served embedding model through the batching scheduler (a pipelines.Embedder), and a small
// head trained on the embeddings in pure Go: multinomial logistic regression with an L2
// penalty, or a one-hidden-layer MLP, both with Adam and early stopping on a stratified
// validation split, deterministic for a seed. Entities are found with a gazetteer built from
// the workspace. Models persist as JSON metadata plus little-endian float32 weights (Save,
// Load); Evaluate runs HumanFirst's k-fold flow locally.
package intent

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/infergo/infergo/pipelines"
)

// EmbedderInfo identifies the embedding model a classifier was trained on. Its vectors are
// only meaningful with that model.
type EmbedderInfo struct {
	ModelID    string `json:"model_id"`
	Revision   string `json:"revision,omitempty"`
	Dimensions int    `json:"dimensions"`
}

// Matches reports whether the served model is the one described by e.
func (e EmbedderInfo) Matches(info pipelines.Info) bool {
	return e.ModelID == info.ModelID && e.Revision == info.Revision && (info.Dimensions == 0 || e.Dimensions == info.Dimensions)
}

// Meta is a model's metadata, stored as model.json.
type Meta struct {
	FormatVersion int          `json:"format_version"`
	ID            string       `json:"id"`
	DisplayName   string       `json:"display_name,omitempty"`
	Created       time.Time    `json:"created"`
	Embedder      EmbedderInfo `json:"embedder"`
	Head          Head         `json:"head"`
	Hidden        int          `json:"hidden,omitempty"`
	Dimensions    int          `json:"dimensions"`
	Classes       []Class      `json:"classes"`
	// Namespace and IntegrationID record who trained the model (HumanFirst request fields).
	Namespace     string           `json:"namespace,omitempty"`
	IntegrationID string           `json:"integration_id,omitempty"`
	Stats         TrainStats       `json:"stats"`
	Warnings      []string         `json:"warnings,omitempty"`
	Gazetteer     []GazetteerEntry `json:"gazetteer,omitempty"`
	// WeightsSHA256 is the hex SHA-256 of weights.bin, checked on load.
	WeightsSHA256 string `json:"weights_sha256"`
}

// Model is a trained intent classifier with its entity gazetteer. It is immutable once
// trained or loaded and safe for concurrent use.
type Model struct {
	Meta Meta
	clf  *classifier
	gaz  *gazetteer
}

// IntentScore is one intent's probability.
type IntentScore struct {
	Class
	Score float32
}

// Prediction is the result for one text: every class by descending probability (ties in class
// order), and the entities found.
type Prediction struct {
	Intents  []IntentScore
	Entities []EntityMatch
}

// Predict classifies texts whose embeddings are vecs (one per text, from the model's
// embedder).
func (m *Model) Predict(texts []string, vecs [][]float32) ([]Prediction, error) {
	if len(texts) != len(vecs) {
		return nil, fmt.Errorf("intent: %d texts, %d vectors", len(texts), len(vecs))
	}
	probs, err := m.clf.probabilities(vecs)
	if err != nil {
		return nil, err
	}
	out := make([]Prediction, len(texts))
	for i, p := range probs {
		scores := make([]IntentScore, len(p))
		for j, v := range p {
			scores[j] = IntentScore{Class: m.Meta.Classes[j], Score: v}
		}
		slices.SortStableFunc(scores, func(a, b IntentScore) int { return cmp.Compare(b.Score, a.Score) })
		out[i] = Prediction{Intents: scores, Entities: m.gaz.find(texts[i])}
	}
	return out, nil
}

// Classify embeds texts with emb (which must be the model's embedder) and predicts them.
func (m *Model) Classify(ctx context.Context, emb pipelines.Embedder, texts []string, cfg EmbedConfig) ([]Prediction, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	vecs, err := EmbedTexts(ctx, emb, texts, cfg)
	if err != nil {
		return nil, err
	}
	return m.Predict(texts, vecs)
}
