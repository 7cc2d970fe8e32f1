package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/server"
	"github.com/infergo/infergo/server/humanfirst"
)

// humanFirst builds the HumanFirst gRPC server when credentials are given (nil otherwise).
// It embeds with whatever model the HTTP server serves at the time of each call, so hot
// reloads reach it too.
func (c *ServeCmd) humanFirst(srv *server.Server, log *slog.Logger) (*humanfirst.Server, error) {
	if c.HumanFirst == "" {
		return nil, nil
	}
	dir := c.DataDir
	if dir == "" {
		dir = defaultDataDir()
	}
	emb := servedEmbedder{srv}
	return humanfirst.New(humanfirst.Config{
		CredentialsFile: c.HumanFirst,
		DataDir:         filepath.Join(dir, "humanfirst"),
		Logger:          log,
		Embedder: func() (pipelines.Embedder, pipelines.Info, error) {
			ctx, cancel := context.WithTimeout(context.Background(), c.RequestTimeout)
			defer cancel()
			m, release, err := srv.Acquire(ctx)
			if err != nil {
				return nil, pipelines.Info{}, err
			}
			defer release()
			if m.Embedder == nil {
				return nil, pipelines.Info{}, fmt.Errorf("the served model (%s, %s) computes no embeddings", m.Info.ModelID, m.Info.Task)
			}
			return emb, m.Info, nil
		},
	})
}

// defaultDataDir is $XDG_DATA_HOME/infergo, else ~/.local/share/infergo.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "infergo")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "infergo")
	}
	return filepath.Join(os.TempDir(), "infergo")
}

// servedEmbedder embeds with the HTTP server's current model, holding a reference for the
// duration of each call so a hot swap never closes a model under it.
type servedEmbedder struct{ srv *server.Server }

func (e servedEmbedder) embedder(ctx context.Context) (pipelines.Embedder, func(), error) {
	m, release, err := e.srv.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	if m.Embedder == nil {
		release()
		return nil, nil, errors.New("the served model computes no embeddings")
	}
	return m.Embedder, release, nil
}

func (e servedEmbedder) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	emb, release, err := e.embedder(ctx)
	if err != nil {
		return nil, pipelines.Stats{}, err
	}
	defer release()
	return emb.Embed(ctx, texts, o)
}

func (e servedEmbedder) EmbedTokens(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][][]float32, pipelines.Stats, error) {
	emb, release, err := e.embedder(ctx)
	if err != nil {
		return nil, pipelines.Stats{}, err
	}
	defer release()
	return emb.EmbedTokens(ctx, texts, o)
}

func (e servedEmbedder) Similarity(ctx context.Context, source string, sentences []string, o pipelines.EmbedOptions) ([]float32, pipelines.Stats, error) {
	emb, release, err := e.embedder(ctx)
	if err != nil {
		return nil, pipelines.Stats{}, err
	}
	defer release()
	return emb.Similarity(ctx, source, sentences, o)
}

// HumanFirstCmd groups the HumanFirst tools.
type HumanFirstCmd struct {
	Evaluate EvaluateCmd `cmd:"" help:"k-fold (or Test-tag) evaluation of an intent classifier on a HumanFirst JSON workspace, with the served embedding model."`
}

// EvaluateCmd runs HumanFirst's train/classify evaluation flow locally.
type EvaluateCmd struct {
	ModelFlags `embed:""`

	Workspace string `arg:"" type:"existingfile" help:"HumanFirst JSON workspace (gzip accepted)."`
	Folds     int    `default:"5" help:"Number of folds."`
	Seed      uint64 `default:"42" help:"Seed for the fold split and training."`
	TestSet   bool   `name:"test-set" help:"Train on untagged phrases and score the ones tagged Test, instead of k folds."`
	Head      string `default:"logreg" enum:"logreg,mlp" help:"Classifier head (${enum})."`
	PNG       string `name:"png" default:"confusion.png" type:"path" help:"Where to write the confusion-matrix PNG (empty: none)."`
}

// Run implements the command.
func (c *EvaluateCmd) Run(log *slog.Logger) error {
	eng, err := c.openEngine(log)
	if err != nil {
		return err
	}
	defer eng.Close()
	src, err := newModelSource(&c.ModelFlags, c.loadOptions(eng, nil, log), log)
	if err != nil {
		return err
	}
	ctx := context.Background()
	t0 := time.Now()
	m, err := src.Load(ctx)
	if err != nil {
		return err
	}
	defer m.Close(ctx)
	if m.Embedder == nil {
		return fmt.Errorf("model %s (%s) computes no embeddings", m.Info.ModelID, m.Info.Task)
	}
	log.Info("model loaded", "model", m.Info.ModelID, "duration", time.Since(t0))
	train := intent.TrainOptions{Head: intent.Head(c.Head), Seed: c.Seed, Embed: intent.EmbedConfig{}.Fit(m.Info)}
	rep, err := intent.EvaluateFile(ctx, m.Embedder, c.Workspace, intent.EvalOptions{Folds: c.Folds, Seed: c.Seed, TestSet: c.TestSet, Train: train})
	if err != nil {
		return err
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		return err
	}
	if c.PNG != "" {
		if err := rep.WriteConfusionPNG(c.PNG); err != nil {
			return err
		}
		log.Info("confusion matrix written", "path", c.PNG)
	}
	return nil
}
