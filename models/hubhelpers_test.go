package models

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

// testHub returns a Hub on the fake hub with a fresh cache and fast retries.
func testHub(t testing.TB, fh *hubtest.Hub, edit ...func(*HubConfig)) *Hub {
	t.Helper()
	cfg := HubConfig{
		Endpoint:        fh.URL,
		CacheDir:        filepath.Join(t.TempDir(), "hub"),
		RetryDelay:      time.Millisecond,
		EtagTimeout:     5 * time.Second,
		DownloadTimeout: 5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// withCache points a config at an existing cache directory.
func withCache(dir string) func(*HubConfig) { return func(c *HubConfig) { c.CacheDir = dir } }

// addFixture serves testdata/fixtures/<name> as repo id, plus extra files.
func addFixture(t testing.TB, fh *hubtest.Hub, id, name string, extra map[string][]byte, o hubtest.RepoOptions) string {
	t.Helper()
	files, err := hubtest.ReadDir(testutil.Fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range extra {
		files[p] = b
	}
	return fh.AddRepo(id, files, o)
}

// weightsDecoys are files a model repo has that Infergo must never download.
var weightsDecoys = map[string][]byte{
	"pytorch_model.bin":           bytes.Repeat([]byte{1}, 4096),
	"model.safetensors":           bytes.Repeat([]byte{2}, 4096),
	"tf_model.h5":                 bytes.Repeat([]byte{3}, 4096),
	"onnx/model_quantized.onnx":   []byte("not fetched unless asked"),
	".gitattributes":              []byte("*.onnx filter=lfs diff=lfs merge=lfs -text\n"),
	"openvino/openvino_model.xml": []byte("<xml/>"),
}

func pull(t testing.TB, h *Hub, id string, o PullOptions) *Repo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := h.Pull(ctx, id, o)
	if err != nil {
		t.Fatalf("Pull(%s, %+v): %v", id, o, err)
	}
	return r
}

// filesUnder lists regular files (and symlinks) under dir, relative and sorted.
func filesUnder(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out
}

// recordingProgress records Progress calls.
type recordingProgress struct {
	mu       sync.Mutex
	started  map[string]int64 // file → resumed bytes at the last start
	advanced map[string]int64
	negative bool
	onAdv    func(file string, total int64)
}

func newRecordingProgress() *recordingProgress {
	return &recordingProgress{started: map[string]int64{}, advanced: map[string]int64{}}
}

func (p *recordingProgress) Start(_, file string, _, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started[file] = resumed
}

func (p *recordingProgress) Advance(file string, n int64) {
	p.mu.Lock()
	if n < 0 {
		p.negative = true
	}
	p.advanced[file] += n
	total, cb := p.advanced[file], p.onAdv
	p.mu.Unlock()
	if cb != nil {
		cb(file, total)
	}
}

func (p *recordingProgress) Finish(string, error) {}

func isCDNGet(path string) func(hubtest.Request) bool {
	return func(r hubtest.Request) bool {
		return r.Server == "cdn" && r.Method == "GET" && (path == "" || strings.Contains(r.Path, path))
	}
}
