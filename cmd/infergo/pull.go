package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/infergo/infergo/models"
)

// CacheDirFlag selects the Hugging Face cache. Without it the huggingface_hub environment
// decides (HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > ~/.cache/huggingface/hub),
// so Infergo shares its cache with Python tools; the container image sets HF_HUB_CACHE=/data.
type CacheDirFlag struct {
	CacheDir string `name:"cache-dir" type:"path" placeholder:"DIR" help:"Hugging Face cache root (default: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)."`
}

// HubFlags are the Hub options shared by pull and serve. The rest comes from the
// huggingface_hub environment: HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the
// $HF_HOME/token file), HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT,
// HF_HUB_DISABLE_SYMLINKS.
type HubFlags struct {
	CacheDirFlag `embed:""`
	Offline      bool `help:"Use only the cache; make no network request (also HF_HUB_OFFLINE=1)."`
}

// Config builds the models.HubConfig: the environment first, then the flags.
func (f HubFlags) Config(logger *slog.Logger) (models.HubConfig, error) {
	cfg, err := models.HubConfigFromEnv(os.Getenv)
	if err != nil {
		return cfg, err
	}
	if f.CacheDir != "" {
		cfg.CacheDir = f.CacheDir
	}
	if f.Offline {
		cfg.Offline = true
	}
	cfg.Logger = logger
	cfg.UserAgent = "infergo/" + version + "; hf_hub-compatible"
	return cfg, nil
}

// cacheDir is the cache root the flag or the environment selects.
func (f CacheDirFlag) cacheDir() string {
	if f.CacheDir != "" {
		return f.CacheDir
	}
	return models.DefaultCacheDir(os.Getenv)
}

// PullCmd downloads what a model needs into the cache.
type PullCmd struct {
	Model    string `arg:"" name:"MODEL_ID" help:"Hub model id (org/name)."`
	Revision string `default:"main" help:"Branch, tag or commit."`
	Task     string `help:"Task to fetch files for (default: inferred from the repo's README pipeline_tag or config.json)."`
	ONNXFile string `name:"onnx-file" placeholder:"FILE" help:"ONNX graph: a repo path (onnx/model_quantized.onnx) or a variant (quantized, fp16, int8, uint8, q4, q4f16, bnb4)."`
	HubFlags `embed:""`
}

// Run implements the command.
func (c *PullCmd) Run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, os.Stdout, os.Stderr, isTerminal(os.Stderr), logger)
}

func (c *PullCmd) run(ctx context.Context, stdout, stderr io.Writer, tty bool, logger *slog.Logger) error {
	cfg, err := c.Config(logger)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, tty)
	cfg.Progress = prog
	hub, err := models.NewHub(cfg)
	if err != nil {
		return err
	}
	repo, err := hub.Pull(ctx, c.Model, models.PullOptions{
		Revision: c.Revision, Task: c.Task, ONNXFile: c.ONNXFile,
		Update: true, // pull means "get the latest of this revision"
	})
	prog.Close(err == nil)
	if err != nil {
		return err
	}
	logger.Info("pulled", "model", repo.ID, "commit", repo.Commit, "graphs", repo.Graphs, "files", len(repo.Files), "cache", hub.Cache().Root())
	// Like `huggingface-cli download`, the snapshot path goes to stdout for scripts.
	_, err = fmt.Fprintln(stdout, repo.Dir)
	return err
}
