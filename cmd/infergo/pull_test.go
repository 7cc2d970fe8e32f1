package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

func parseCLI(t *testing.T, args ...string) *CLI {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("infergo"), kong.Exit(func(int) { t.Fatalf("kong exited on %q", args) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return &cli
}

// hubEnv serves tiny-bert-embeddings as org/emb and points the HF environment at it.
func hubEnv(t *testing.T) *hubtest.Hub {
	fh := hubtest.Start(t)
	if _, err := fh.AddFixture("org/emb", testutil.Fixture("tiny-bert-embeddings"), hubtest.RepoOptions{}); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	for k, v := range map[string]string{"HF_ENDPOINT": fh.URL, "HF_HOME": home, "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": "",
		"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""} {
		t.Setenv(k, v)
	}
	return fh
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func TestPullAndCacheCommands(t *testing.T) {
	fh := hubEnv(t)
	cache := filepath.Join(t.TempDir(), "cache")

	cli := parseCLI(t, "pull", "org/emb", "--cache-dir", cache)
	var out, progress bytes.Buffer
	if err := cli.Pull.run(t.Context(), &out, &progress, false, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	snap := strings.TrimSpace(out.String())
	if filepath.Dir(filepath.Dir(snap)) != filepath.Join(cache, "models--org--emb") {
		t.Errorf("printed %q", snap)
	}
	for _, want := range []string{"downloading org/emb onnx/model.onnx_data (284.7K)", "downloaded onnx/model.onnx_data (284.7K in"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	// Offline, a second pull answers from the cache without a request.
	fh.ResetRequests()
	cli = parseCLI(t, "pull", "org/emb", "--cache-dir", cache, "--offline")
	out.Reset()
	if err := cli.Pull.run(t.Context(), &out, &progress, false, testLogger(t)); err != nil || strings.TrimSpace(out.String()) != snap {
		t.Errorf("offline pull: %q, %v", out.String(), err)
	}
	if n := fh.RequestCount(); n != 0 {
		t.Errorf("%d requests offline", n)
	}

	cli = parseCLI(t, "cache", "ls", "--cache-dir", cache)
	out.Reset()
	if err := cli.Cache.Ls.run(&out, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REPO ID", "org/emb", "model", "358.4K", " 8 ", "main", "Scanned 1 repo(s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cache ls lacks %q:\n%s", want, out.String())
		}
	}
	cli = parseCLI(t, "cache", "ls", "-v", "--cache-dir", cache)
	out.Reset()
	if err := cli.Cache.Ls.run(&out, time.Now()); err != nil || !strings.Contains(out.String(), filepath.Base(snap)) {
		t.Errorf("cache ls -v: %v\n%s", err, out.String())
	}

	cli = parseCLI(t, "cache", "rm", "org/emb", "--cache-dir", cache)
	out.Reset()
	if err := cli.Cache.Rm.run(&out); err != nil || !strings.Contains(out.String(), "removed org/emb: 1 revision(s), 1 ref(s), 8 blob(s), 358.4K freed") {
		t.Errorf("cache rm: %v\n%s", err, out.String())
	}
	if err := cli.Cache.Rm.run(&out); err == nil {
		t.Error("removing a missing repo succeeded")
	}
}

func TestPullCommandTTYAndErrors(t *testing.T) {
	hubEnv(t)
	cache := t.TempDir()
	cli := parseCLI(t, "pull", "org/emb", "--cache-dir", cache, "--onnx-file", "onnx/model.onnx", "--task", "feature-extraction")
	var out, bar bytes.Buffer
	if err := cli.Pull.run(t.Context(), &out, &bar, true, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bar.String(), "org/emb") || !strings.Contains(bar.String(), "100%") {
		t.Errorf("bar output: %q", bar.String())
	}
	cli = parseCLI(t, "pull", "org/missing", "--cache-dir", cache)
	err := cli.Pull.run(t.Context(), &out, &bar, false, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("missing repo: %v", err)
	}
	cli = parseCLI(t, "pull", "org/emb", "--cache-dir", cache, "--onnx-file", "int8")
	if err := cli.Pull.run(t.Context(), &out, &bar, false, testLogger(t)); err == nil || !strings.Contains(err.Error(), "onnx/model.onnx") {
		t.Errorf("missing variant: %v", err)
	}
}

func TestHubFlagsConfig(t *testing.T) {
	hubEnv(t)
	t.Setenv("HF_HUB_CACHE", "/from/env")
	t.Setenv("HF_TOKEN", "hf_x")
	cfg, err := HubFlags{}.Config(testLogger(t))
	if err != nil || cfg.CacheDir != "/from/env" || cfg.Token != "hf_x" || cfg.Offline {
		t.Errorf("%+v, %v", cfg, err)
	}
	cfg, _ = HubFlags{CacheDirFlag: CacheDirFlag{CacheDir: "/flag"}, Offline: true}.Config(testLogger(t))
	if cfg.CacheDir != "/flag" || !cfg.Offline {
		t.Errorf("flags ignored: %+v", cfg)
	}
	if got := (CacheDirFlag{}).cacheDir(); got != "/from/env" {
		t.Errorf("cacheDir() = %q", got)
	}
	if humanBytes(999) != "999.0" || humanBytes(284672) != "284.7K" || humanBytes(90_147_840) != "90.1M" {
		t.Error("humanBytes")
	}
	now := time.Now()
	for d, want := range map[time.Duration]string{time.Second: "a few seconds ago", 2 * time.Minute: "2 minutes ago", 3 * time.Hour: "3 hours ago", 48 * time.Hour: "2 days ago"} {
		if got := timeSince(now, now.Add(-d)); got != want {
			t.Errorf("timeSince(%v) = %q", d, got)
		}
	}
}
