package models

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/models/hubtest"
)

// childEnv makes the test binary act as a second process pulling into a shared cache.
const childEnv = "INFERGO_HUB_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childPull(os.Getenv(childEnv)))
	}
	os.Exit(m.Run())
}

// childPull pulls repo id with the configuration the environment gives (HF_ENDPOINT,
// HF_HUB_CACHE), as `infergo pull` would, and prints the commit.
func childPull(id string) int {
	cfg, err := HubConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.RetryDelay = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	h, err := NewHub(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := h.Pull(ctx, id, PullOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(r.Commit)
	return 0
}

// TestTwoProcessesShareCache: two processes and two goroutines fill one cache at the same
// time. The per-blob file locks make each file download exactly once, and every blob
// verifies.
func TestTwoProcessesShareCache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	fh, commit := embRepo(t)
	fh.SetFaults(hubtest.Faults{Throttle: 15 * time.Millisecond, ThrottleChunk: 32 << 10})
	root := filepath.Join(t.TempDir(), "shared")
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 4)
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=org/emb", "HF_ENDPOINT="+fh.URL, "HF_HUB_CACHE="+root,
			"HF_HUB_OFFLINE=", "HF_TOKEN=", "HF_HOME="+t.TempDir())
		cmd.Stdout = &outs[i]
		cmd.Stderr = t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = cmd.Wait() })
	}
	for i := 2; i < 4; i++ {
		wg.Go(func() {
			h := testHub(t, fh, withCache(root))
			_, errs[i] = h.Pull(t.Context(), "org/emb", PullOptions{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("puller %d: %v", i, err)
		}
	}
	for i := range outs {
		if got := strings.TrimSpace(outs[i].String()); got != commit {
			t.Errorf("process %d printed %q, want %s", i, got, commit)
		}
	}
	checkCacheIntegrity(t, fh, root, "org/emb", commit)
}
