package models

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

// TestWarmStart: a second start with a warm cache makes no request (offline or not), and
// an update check is exactly one API request with no downloads.
func TestWarmStart(t *testing.T) {
	fh, commit := embRepo(t)
	first := pull(t, testHub(t, fh), "org/emb", PullOptions{})
	root := filepath.Dir(filepath.Dir(filepath.Dir(first.Dir)))
	for _, tc := range []struct {
		name     string
		offline  bool
		update   bool
		requests int
	}{
		{"default", false, false, 0},
		{"offline", true, false, 0},
		{"offline with update", true, true, 0},
		{"update", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fh.ResetRequests()
			h := testHub(t, fh, withCache(root), func(c *HubConfig) { c.Offline = tc.offline })
			start := time.Now()
			r := pull(t, h, "org/emb", PullOptions{Update: tc.update})
			took := time.Since(start)
			if r.Commit != commit || !reflect.DeepEqual(r.Files, first.Files) || !reflect.DeepEqual(r.Graphs, first.Graphs) {
				t.Errorf("repo %+v, want %+v", r, first)
			}
			if n := fh.RequestCount(); n != tc.requests {
				t.Errorf("%d requests (%v), want %d", n, fh.Requests(), tc.requests)
			}
			if tc.requests == 0 && took > time.Second {
				t.Errorf("warm start took %v", took)
			}
		})
	}
}

func TestOfflineNotCached(t *testing.T) {
	fh, _ := embRepo(t)
	h := testHub(t, fh, func(c *HubConfig) { c.Offline = true })
	_, err := h.Pull(t.Context(), "org/emb", PullOptions{})
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("err = %v", err)
	}
	if _, err := h.DownloadFile(t.Context(), "org/emb", "main", "config.json"); !errors.Is(err, ErrNotCached) {
		t.Errorf("DownloadFile: %v", err)
	}
	if _, err := h.Check(t.Context(), "org/emb", "main"); !errors.Is(err, ErrOffline) {
		t.Errorf("Check: %v", err)
	}
	if n := fh.RequestCount(); n != 0 {
		t.Errorf("%d requests while offline", n)
	}
}

// TestOfflineNeedsEveryFile: a snapshot that lacks a needed file (another variant, a data
// file) is not good enough offline, and the error names what is missing.
func TestOfflineNeedsEveryFile(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/emb", "tiny-bert-embeddings", weightsDecoys, hubtest.RepoOptions{})
	h := testHub(t, fh)
	r := pull(t, h, "org/emb", PullOptions{})
	off := testHub(t, fh, withCache(h.Cache().Root()), func(c *HubConfig) { c.Offline = true })
	if _, err := off.Pull(t.Context(), "org/emb", PullOptions{ONNXFile: "quantized"}); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "onnx/model_quantized.onnx") {
		t.Errorf("other variant: %v", err)
	}
	os.Remove(r.Path(dataFile))
	_, err := off.Pull(t.Context(), "org/emb", PullOptions{})
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), dataFile) {
		t.Errorf("missing data file: %v", err)
	}
	// Online, the missing link is restored from the blob that is still there.
	fh.ResetRequests()
	pull(t, h, "org/emb", PullOptions{})
	if n := fh.CountRequests(isCDNGet("")); n != 0 {
		t.Errorf("re-downloaded a cached blob (%d CDN requests)", n)
	}
}

// TestHubUnreachable: when the Hub cannot be reached, a cached snapshot is used (as
// huggingface_hub does); without one the error says both things.
func TestHubUnreachable(t *testing.T) {
	fh, commit := embRepo(t)
	h := testHub(t, fh)
	pull(t, h, "org/emb", PullOptions{})
	fh.SetFaults(hubtest.Faults{Down: true})
	r := pull(t, h, "org/emb", PullOptions{Update: true})
	if r.Commit != commit {
		t.Errorf("commit %s", r.Commit)
	}
	if _, _, err := h.Refresh(t.Context(), "org/emb", PullOptions{}, commit); err == nil {
		t.Error("Refresh hid an unreachable Hub")
	}
	cold := testHub(t, fh, func(c *HubConfig) { c.MaxRetries = 1 })
	_, err := cold.Pull(t.Context(), "org/emb", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "not fully cached") {
		t.Errorf("cold cache, Hub down: %v", err)
	}
	fh.Close()
	refused := testHub(t, fh, withCache(h.Cache().Root()))
	if r := pull(t, refused, "org/emb", PullOptions{Update: true}); r.Commit != commit {
		t.Errorf("connection refused: commit %s", r.Commit)
	}
}

// TestNoFallbackOnAuthErrors: a repo that became private is an error even with a cache.
func TestNoFallbackOnAuthErrors(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/emb", "tiny-bert-embeddings", nil, hubtest.RepoOptions{})
	h := testHub(t, fh)
	pull(t, h, "org/emb", PullOptions{})
	fh.Rename("org/emb", "org/tmp")
	addFixture(t, fh, "org/emb", "tiny-bert-embeddings", nil, hubtest.RepoOptions{Private: true, Token: "x"})
	if _, err := h.Pull(t.Context(), "org/emb", PullOptions{Update: true}); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("err = %v", err)
	}
}

// TestPushAndRefresh is the hot-reload flow: a new commit on main is detected, fetched
// (reusing unchanged blobs) and reported; refs/main moves, the old snapshot stays.
func TestPushAndRefresh(t *testing.T) {
	fh, first := embRepo(t)
	h := testHub(t, fh)
	r1 := pull(t, h, "org/emb", PullOptions{})
	if r, changed, err := h.Refresh(t.Context(), "org/emb", PullOptions{}, first); err != nil || changed || r.Commit != first {
		t.Fatalf("Refresh without a change: %v %v %v", r, changed, err)
	}
	second := fh.Push("org/emb", "main", map[string][]byte{"config.json": []byte(`{"model_type":"bert","architectures":["BertModel"],"hidden_size":32}`)})
	if c, err := h.Check(t.Context(), "org/emb", "main"); err != nil || c != second {
		t.Errorf("Check = %s, %v", c, err)
	}
	fh.ResetRequests()
	r2, changed, err := h.Refresh(t.Context(), "org/emb", PullOptions{}, first)
	if err != nil || !changed || r2.Commit != second {
		t.Fatalf("Refresh: %+v %v %v", r2, changed, err)
	}
	if n := fh.CountRequests(isCDNGet("")); n != 0 {
		t.Errorf("%d LFS downloads for a config-only commit", n)
	}
	if got, _ := h.Cache().ReadRef("org/emb", "main"); got != second {
		t.Errorf("refs/main = %s", got)
	}
	if _, err := os.Stat(r1.Dir); err != nil {
		t.Errorf("old snapshot gone: %v", err)
	}
	b, _ := os.ReadFile(r2.Path("config.json"))
	if !strings.Contains(string(b), `"hidden_size":32`) {
		t.Errorf("new config: %s", b)
	}
	// A replayed notification for the cached commit is a no-op: one API request.
	fh.ResetRequests()
	if _, changed, err := h.Refresh(t.Context(), "org/emb", PullOptions{}, second); err != nil || changed || fh.RequestCount() != 1 {
		t.Errorf("replay: changed %v, %v, %d requests", changed, err, fh.RequestCount())
	}
	// Offline, Refresh follows refs/ written by another process.
	off := testHub(t, fh, withCache(h.Cache().Root()), func(c *HubConfig) { c.Offline = true })
	if r, changed, err := off.Refresh(t.Context(), "org/emb", PullOptions{}, first); err != nil || !changed || r.Commit != second {
		t.Errorf("offline refresh: %v %v %v", r, changed, err)
	}
}

// TestConcurrentPulls: goroutines filling one cache download each blob once.
func TestConcurrentPulls(t *testing.T) {
	fh, commit := embRepo(t)
	fh.SetFaults(hubtest.Faults{Throttle: 2 * time.Millisecond, ThrottleChunk: 32 << 10})
	root := filepath.Join(t.TempDir(), "hub")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			h := testHub(t, fh, withCache(root))
			r, err := h.Pull(t.Context(), "org/emb", PullOptions{})
			if err == nil && r.Commit != commit {
				err = errors.New("wrong commit " + r.Commit)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkCacheIntegrity(t, fh, root, "org/emb", commit)
}

// checkCacheIntegrity: each file was downloaded once, every blob verifies, and nothing
// temporary is left.
func checkCacheIntegrity(t *testing.T, fh *hubtest.Hub, root, id, commit string) {
	t.Helper()
	h := testHub(t, fh, withCache(root))
	r, err := h.Cached(id, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Commit != commit {
		t.Errorf("cached commit %s", r.Commit)
	}
	for _, f := range r.Files {
		info, _ := fh.File(id, commit, f)
		checkBlob(t, h, id, info)
		gets := fh.CountRequests(func(q hubtest.Request) bool {
			return q.Method == "GET" && (strings.HasSuffix(q.Path, "/"+commit+"/"+f) || strings.HasSuffix(q.Path, "/"+info.SHA256))
		})
		if gets != 1 {
			t.Errorf("%s downloaded %d times", f, gets)
		}
	}
	for _, p := range filesUnder(t, h.Cache().RepoDir(id)) {
		if strings.HasSuffix(p, ".incomplete") || strings.HasSuffix(p, ".tmp") {
			t.Errorf("left behind: %s", p)
		}
	}
}

func TestResolveLocalAndHub(t *testing.T) {
	fh, commit := embRepo(t)
	cfg := testHub(t, fh).cfg
	local := testutil.Fixture("tiny-bert-ner")
	r, err := Resolve(t.Context(), local, PullOptions{}, cfg)
	if err != nil || r.Dir != local || r.Commit != "" {
		t.Errorf("local: %+v, %v", r, err)
	}
	if n := fh.RequestCount(); n != 0 {
		t.Errorf("%d requests for a local directory", n)
	}
	if _, err := Resolve(t.Context(), "./no/such/dir", PullOptions{}, cfg); !errors.Is(err, ErrNotLocal) {
		t.Errorf("missing dir: %v", err)
	}
	r, err = Resolve(t.Context(), "org/emb", PullOptions{}, cfg)
	if err != nil || r.Commit != commit {
		t.Errorf("hub: %+v, %v", r, err)
	}
	for _, bad := range []string{"org/../x", "a--b/c", "org/name/extra/x"} {
		if _, err := Resolve(t.Context(), bad, PullOptions{}, cfg); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Resolve(t.Context(), "org/emb", PullOptions{Revision: "../../x"}, cfg); err == nil {
		t.Error("escaping revision accepted")
	}
}

// TestDisableSymlinks: HF_HUB_DISABLE_SYMLINKS puts copies in the snapshot (as
// huggingface_hub does where symlinks are unavailable); they resolve offline too.
func TestDisableSymlinks(t *testing.T) {
	fh, commit := embRepo(t)
	h := testHub(t, fh, func(c *HubConfig) { c.DisableSymlinks = true })
	r := pull(t, h, "org/emb", PullOptions{})
	for _, f := range r.Files {
		st, err := os.Lstat(r.Path(f))
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}
	info, _ := fh.File("org/emb", commit, dataFile)
	b, _ := os.ReadFile(r.Path(dataFile))
	if len(b) != info.Size {
		t.Errorf("copy has %d bytes", len(b))
	}
	off := testHub(t, fh, withCache(h.Cache().Root()), func(c *HubConfig) { c.Offline = true })
	if r2 := pull(t, off, "org/emb", PullOptions{}); r2.Commit != commit {
		t.Errorf("offline: %s", r2.Commit)
	}
}
