package models

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infergo/infergo/models/hubtest"
)

const dataFile = "onnx/model.onnx_data" // 284,672 bytes in tiny-bert-embeddings

func embRepo(t *testing.T) (*hubtest.Hub, string) {
	fh := hubtest.Start(t)
	return fh, addFixture(t, fh, "org/emb", "tiny-bert-embeddings", nil, hubtest.RepoOptions{})
}

func rangeRequests(fh *hubtest.Hub, path string) []string {
	var out []string
	for _, r := range fh.Requests() {
		if r.Server == "cdn" && strings.Contains(r.Path, path) && r.Range != "" {
			out = append(out, r.Range)
		}
	}
	return out
}

// TestResumeAfterCut: the CDN drops the connection mid-body; the client resumes with
// Range from the bytes it has and the blob verifies.
func TestResumeAfterCut(t *testing.T) {
	fh, _ := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{CutCount: 1, CutAfter: 100_000, CutMatch: "cdn GET /blobs/" + info.SHA256})
	h := testHub(t, fh)
	r := pull(t, h, "org/emb", PullOptions{})
	if rr := rangeRequests(fh, info.SHA256); len(rr) != 1 || !strings.HasPrefix(rr[0], "bytes=") || rr[0] == "bytes=0-" {
		t.Errorf("range requests %q, want one resuming request", rr)
	}
	checkBlob(t, h, "org/emb", info)
	if !r.Has(dataFile) {
		t.Error("data file missing")
	}
}

func checkBlob(t *testing.T, h *Hub, id string, info hubtest.FileInfo) {
	t.Helper()
	b, err := os.ReadFile(h.Cache().blobPath(id, info.ETag))
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(info.ETag, info.LFS, int64(len(b)))
	v.Write(b)
	if err := v.check("blob"); err != nil || len(b) != info.Size {
		t.Errorf("blob %s: %v (size %d)", info.ETag, err, len(b))
	}
}

// TestResumeAcrossRuns: a cancelled pull leaves only blobs/<etag>.incomplete (no blob, no
// pointer); the next run resumes it with Range from its size.
func TestResumeAcrossRuns(t *testing.T) {
	fh, commit := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{Throttle: 5 * time.Millisecond, ThrottleChunk: 16 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prog := newRecordingProgress()
	prog.onAdv = func(file string, total int64) {
		if file == dataFile && total >= 64<<10 {
			cancel()
		}
	}
	h := testHub(t, fh, func(c *HubConfig) { c.Progress = prog })
	if _, err := h.Pull(ctx, "org/emb", PullOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	blob := h.Cache().blobPath("org/emb", info.ETag)
	st, err := os.Stat(blob + ".incomplete")
	if err != nil || st.Size() == 0 || st.Size() >= int64(info.Size) {
		t.Fatalf("incomplete file: %v, %v", st, err)
	}
	if _, err := os.Stat(blob); err == nil {
		t.Fatal("a partial blob is in place")
	}
	if h.Cache().hasFile("org/emb", commit, dataFile) {
		t.Fatal("pointer to a partial blob")
	}
	fh.SetFaults(hubtest.Faults{})
	fh.ResetRequests()
	prog2 := newRecordingProgress()
	h2 := testHub(t, fh, withCache(h.Cache().Root()), func(c *HubConfig) { c.Progress = prog2 })
	pull(t, h2, "org/emb", PullOptions{})
	want := fmt.Sprintf("bytes=%d-", st.Size())
	if rr := rangeRequests(fh, info.SHA256); len(rr) != 1 || rr[0] != want {
		t.Errorf("range requests %q, want [%s]", rr, want)
	}
	if prog2.started[dataFile] != st.Size() {
		t.Errorf("progress resumed at %d, want %d", prog2.started[dataFile], st.Size())
	}
	checkBlob(t, h2, "org/emb", info)
	if _, err := os.Stat(blob + ".incomplete"); err == nil {
		t.Error(".incomplete left behind")
	}
}

// TestRestartWhenRangeIgnored: a server that answers 200 to a Range request makes the
// client start over from byte 0.
func TestRestartWhenRangeIgnored(t *testing.T) {
	fh, _ := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{CutCount: 1, CutAfter: 100_000, CutMatch: info.SHA256, IgnoreRange: true})
	prog := newRecordingProgress()
	h := testHub(t, fh, func(c *HubConfig) { c.Progress = prog })
	pull(t, h, "org/emb", PullOptions{})
	checkBlob(t, h, "org/emb", info)
	if !prog.negative || prog.advanced[dataFile] != int64(info.Size) {
		t.Errorf("progress: restarted %v, net %d bytes", prog.negative, prog.advanced[dataFile])
	}
	if n := fh.CountRequests(isCDNGet(info.SHA256)); n != 2 {
		t.Errorf("%d GETs, want 2", n)
	}
}

// TestStalledTransfer: no bytes for longer than DownloadTimeout → abort and resume.
func TestStalledTransfer(t *testing.T) {
	fh, _ := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{CutCount: 1, CutAfter: 50_000, Stall: true, CutMatch: info.SHA256})
	h := testHub(t, fh, func(c *HubConfig) { c.DownloadTimeout = 300 * time.Millisecond })
	start := time.Now()
	pull(t, h, "org/emb", PullOptions{})
	checkBlob(t, h, "org/emb", info)
	if rr := rangeRequests(fh, info.SHA256); len(rr) != 1 {
		t.Errorf("range requests %q", rr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestSlowTransfer: a slow but steady transfer is not a stall.
func TestSlowTransfer(t *testing.T) {
	fh, _ := embRepo(t)
	fh.SetFaults(hubtest.Faults{Throttle: 20 * time.Millisecond, ThrottleChunk: 32 << 10})
	h := testHub(t, fh, func(c *HubConfig) { c.DownloadTimeout = 500 * time.Millisecond })
	pull(t, h, "org/emb", PullOptions{})
	for _, r := range fh.Requests() {
		if r.Range != "" {
			t.Errorf("slow transfer was restarted: %s", r)
		}
	}
}

// TestRetryBursts: 5xx and 429 answers are retried with backoff.
func TestRetryBursts(t *testing.T) {
	for _, tc := range []struct {
		status     int
		match      string
		retryAfter string
	}{
		{http.StatusServiceUnavailable, "", ""},
		{http.StatusBadGateway, "HEAD", ""},
		{http.StatusTooManyRequests, "cdn", "0"},
		{http.StatusRequestTimeout, "/api/", ""},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			fh, _ := embRepo(t)
			fh.SetFaults(hubtest.Faults{FailCount: 3, FailStatus: tc.status, FailMatch: tc.match, RetryAfter: tc.retryAfter})
			h := testHub(t, fh)
			pull(t, h, "org/emb", PullOptions{})
			if n := fh.CountRequests(func(r hubtest.Request) bool { return r.Status == tc.status }); n != 3 {
				t.Errorf("%d failed requests, want 3", n)
			}
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	fh, _ := embRepo(t)
	fh.SetFaults(hubtest.Faults{FailCount: 1000, FailStatus: http.StatusInternalServerError})
	h := testHub(t, fh, func(c *HubConfig) { c.MaxRetries = 2 })
	_, err := h.Pull(t.Context(), "org/emb", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v", err)
	}
	if n := fh.RequestCount(); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
}

// TestChecksumMismatch: a corrupted body fails verification and leaves nothing behind.
func TestChecksumMismatch(t *testing.T) {
	fh, _ := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{CorruptCount: 1, CutMatch: info.SHA256})
	h := testHub(t, fh)
	_, err := h.Pull(t.Context(), "org/emb", PullOptions{})
	if !errors.Is(err, ErrConsistency) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v", err)
	}
	blob := h.Cache().blobPath("org/emb", info.ETag)
	for _, p := range []string{blob, blob + ".incomplete"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", filepath.Base(p))
		}
	}
	if _, err := h.Cache().ReadRef("org/emb", "main"); !errors.Is(err, ErrNotCached) {
		t.Errorf("ref written for a failed pull: %v", err)
	}
	// A regular (git) file is verified by its blob sha1.
	fh.SetFaults(hubtest.Faults{CorruptCount: 1, CutMatch: "config.json"})
	h2 := testHub(t, fh)
	if _, err := h2.Pull(t.Context(), "org/emb", PullOptions{}); !errors.Is(err, ErrConsistency) || !strings.Contains(err.Error(), "git-sha1") {
		t.Errorf("corrupt config.json: %v", err)
	}
	fh.SetFaults(hubtest.Faults{})
	pull(t, h, "org/emb", PullOptions{})
	pull(t, h2, "org/emb", PullOptions{})
}

// TestSizeMismatch: a clean but short response is huggingface_hub's "Consistency check
// failed".
func TestSizeMismatch(t *testing.T) {
	fh, _ := embRepo(t)
	fh.SetFaults(hubtest.Faults{TruncateCount: 1, CutMatch: "cdn"})
	h := testHub(t, fh)
	_, err := h.Pull(t.Context(), "org/emb", PullOptions{})
	if !errors.Is(err, ErrConsistency) || !strings.Contains(err.Error(), "Consistency check failed: file should be of size") {
		t.Fatalf("err = %v", err)
	}
}

// TestTokenScopedToHub: the token reaches the Hub but never the CDN (which, like S3, would
// reject a second credential), and a private repo needs it.
func TestTokenScopedToHub(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/private", "tiny-bert-embeddings", nil, hubtest.RepoOptions{Private: true, Token: "hf_secret"})
	h := testHub(t, fh, func(c *HubConfig) { c.Token = "hf_secret" })
	pull(t, h, "org/private", PullOptions{})
	hubAuth, cdn := 0, 0
	for _, r := range fh.Requests() {
		switch {
		case r.Server == "cdn" && r.Auth:
			t.Errorf("token sent to the CDN: %s", r)
		case r.Server == "cdn":
			cdn++
		case r.Auth:
			hubAuth++
		}
	}
	if cdn == 0 || hubAuth != fh.RequestCount()-cdn {
		t.Errorf("hub requests with auth %d, cdn %d", hubAuth, cdn)
	}
}

func TestHubErrors(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/private", "tiny-bert-ner", nil, hubtest.RepoOptions{Private: true, Token: "hf_private"})
	addFixture(t, fh, "org/gated", "tiny-bert-ner", nil, hubtest.RepoOptions{Gated: true, Token: "hf_granted"})
	addFixture(t, fh, "org/public", "tiny-bert-ner", nil, hubtest.RepoOptions{})
	cases := []struct {
		name, token, id, rev string
		kind                 error
		text                 string
	}{
		{"private without token", "", "org/private", "", ErrRepoNotFound, "HF_TOKEN"},
		{"private with another account", "hf_granted", "org/private", "", ErrRepoNotFound, "not found"},
		{"invalid token", "hf_bogus", "org/public", "", ErrUnauthorized, "rejected the token"},
		{"gated", "", "org/gated", "", ErrGatedRepo, "Request access"},
		{"missing repo", "", "org/nope", "", ErrRepoNotFound, "org/nope"},
		{"missing revision", "", "org/public", "v9", ErrRevisionNotFound, `"v9"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := testHub(t, fh, func(c *HubConfig) { c.Token = tc.token })
			fh.ResetRequests()
			_, err := h.Pull(t.Context(), tc.id, PullOptions{Revision: tc.rev})
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v; want %v mentioning %q", err, tc.kind, tc.text)
			}
			if n := fh.RequestCount(); n != 1 {
				t.Errorf("%d requests: permanent errors must not be retried", n)
			}
		})
	}
	h := testHub(t, fh, func(c *HubConfig) { c.Token = "hf_granted" })
	pull(t, h, "org/gated", PullOptions{})
}

// TestEntryNotFound: hf_hub_download of a missing file records .no_exist and the ref, and
// offline lookups then know the file is missing.
func TestEntryNotFound(t *testing.T) {
	fh := hubtest.Start(t)
	commit := addFixture(t, fh, "org/ner", "tiny-bert-ner", nil, hubtest.RepoOptions{})
	h := testHub(t, fh)
	_, err := h.DownloadFile(t.Context(), "org/ner", "main", "generation_config.json")
	if !errors.Is(err, ErrEntryNotFound) {
		t.Fatalf("err = %v", err)
	}
	marker := filepath.Join(h.Cache().RepoDir("org/ner"), ".no_exist", commit, "generation_config.json")
	if st, err := os.Stat(marker); err != nil || st.Size() != 0 {
		t.Errorf(".no_exist marker: %v", err)
	}
	if c, err := h.Cache().ReadRef("org/ner", "main"); err != nil || c != commit {
		t.Errorf("ref = %q, %v", c, err)
	}
	off := testHub(t, fh, withCache(h.Cache().Root()), func(c *HubConfig) { c.Offline = true })
	fh.ResetRequests()
	if _, err := off.DownloadFile(t.Context(), "org/ner", "main", "generation_config.json"); !errors.Is(err, ErrEntryNotFound) {
		t.Errorf("offline: %v", err)
	}
	if _, err := off.DownloadFile(t.Context(), "org/ner", "main", "config.json"); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline uncached: %v", err)
	}
	p, err := h.DownloadFile(t.Context(), "org/ner", "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := off.DownloadFile(t.Context(), "org/ner", "main", "config.json"); err != nil || got != p {
		t.Errorf("offline cached: %q, %v", got, err)
	}
	fh.ResetRequests()
	if got, err := h.DownloadFile(t.Context(), "org/ner", commit, "config.json"); err != nil || got != p || fh.RequestCount() != 0 {
		t.Errorf("by commit: %q, %v, %d requests (want 0)", got, err, fh.RequestCount())
	}
}

// TestRenamedRepo: the Hub answers a relative 307 for a renamed repo; it is followed.
func TestRenamedRepo(t *testing.T) {
	fh := hubtest.Start(t)
	addFixture(t, fh, "org/old", "tiny-bert-ner", nil, hubtest.RepoOptions{})
	fh.Rename("org/old", "org/new")
	h := testHub(t, fh)
	r := pull(t, h, "org/old", PullOptions{})
	if !r.Has("onnx/model.onnx") {
		t.Fatal("graph missing")
	}
	if n := fh.CountRequests(func(r hubtest.Request) bool { return r.Status == http.StatusTemporaryRedirect }); n == 0 {
		t.Error("no redirect seen")
	}
}

// TestTreeListing: a server whose repo info lacks blob metadata is listed through the
// paginated tree API.
func TestTreeListing(t *testing.T) {
	fh, _ := embRepo(t)
	fh.SetFaults(hubtest.Faults{OmitBlobs: true, PageSize: 3})
	h := testHub(t, fh)
	r := pull(t, h, "org/emb", PullOptions{})
	if len(r.Files) != 8 {
		t.Errorf("files %q", r.Files)
	}
	pages := fh.CountRequests(func(r hubtest.Request) bool { return strings.Contains(r.Path, "/tree/") })
	if pages < 4 {
		t.Errorf("%d tree pages, want pagination", pages)
	}
	if tree, ok := h.Cache().readTree("org/emb", r.Commit); !ok || tree[dataFile].LFSSHA256 == "" {
		t.Errorf("cached tree: %v %+v", ok, tree[dataFile])
	}
}

// TestPRRevision: refs/pr/1 is escaped as one path segment and cached under refs/refs/pr/1.
func TestPRRevision(t *testing.T) {
	fh := hubtest.Start(t)
	commit := addFixture(t, fh, "org/ner", "tiny-bert-ner", nil, hubtest.RepoOptions{})
	pr := fh.Push("org/ner", "main", map[string][]byte{"README.md": []byte("---\npipeline_tag: token-classification\n---\n")})
	fh.SetRef("org/ner", "main", commit)
	fh.SetRef("org/ner", "refs/pr/1", pr)
	h := testHub(t, fh)
	r := pull(t, h, "org/ner", PullOptions{Revision: "refs/pr/1"})
	if r.Commit != pr || !r.Has("README.md") {
		t.Errorf("commit %s, files %q", r.Commit, r.Files)
	}
	b, err := os.ReadFile(filepath.Join(h.Cache().RepoDir("org/ner"), "refs", "refs", "pr", "1"))
	if err != nil || string(b) != pr {
		t.Errorf("ref file: %q, %v", b, err)
	}
	if n := fh.CountRequests(func(r hubtest.Request) bool { return strings.Contains(r.Path, "refs%2Fpr%2F1") }); n != 1 {
		t.Errorf("%d requests with refs%%2Fpr%%2F1", n)
	}
}

// TestExpiredDownloadURL: storage refusing a pre-signed URL (403) gets a fresh one from a
// new HEAD on the same commit.
func TestExpiredDownloadURL(t *testing.T) {
	fh, _ := embRepo(t)
	info, _ := fh.File("org/emb", "main", dataFile)
	fh.SetFaults(hubtest.Faults{FailCount: 1, FailStatus: http.StatusForbidden, FailMatch: "cdn GET /blobs/" + info.SHA256})
	h := testHub(t, fh)
	pull(t, h, "org/emb", PullOptions{})
	checkBlob(t, h, "org/emb", info)
	heads := fh.CountRequests(func(r hubtest.Request) bool { return r.Method == "HEAD" && strings.HasSuffix(r.Path, dataFile) })
	if heads != 2 {
		t.Errorf("%d HEADs for the data file, want 2", heads)
	}
}

// TestLogProgress: without a Progress, downloads are logged (the server's case).
func TestLogProgress(t *testing.T) {
	var buf bytes.Buffer
	p := newLogProgress(slog.New(slog.NewTextHandler(&buf, nil)))
	p.every = 0
	p.Start("org/x", "onnx/model.onnx", 100, 10)
	p.Advance("onnx/model.onnx", 40)
	p.Finish("onnx/model.onnx", nil)
	p.Start("org/x", "b", 5, 0)
	p.Finish("b", errors.New("boom"))
	p.Advance("unknown", 1)
	for _, want := range []string{"msg=downloading repo=org/x file=onnx/model.onnx size=100 resumed_at=10",
		`msg="download progress" repo=org/x file=onnx/model.onnx done=50 size=100`, "msg=downloaded repo=org/x file=onnx/model.onnx",
		`msg="download failed" repo=org/x file=b`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}
