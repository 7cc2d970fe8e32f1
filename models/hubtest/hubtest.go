// Package hubtest is a fake Hugging Face Hub built on net/http/httptest. It speaks the real
// download protocol (hf-inference-api.md §5): HEAD/GET /{repo}/resolve/{rev}/{path} with
// X-Repo-Commit and ETag, 302 redirects of LFS files to a second "CDN" server with
// X-Linked-Etag/X-Linked-Size, Range requests, /api/models/{repo}[/revision/{rev}] and the
// paginated tree API, Hub error codes (RepoNotFound, GatedRepo, RevisionNotFound,
// EntryNotFound), private and gated repos, renamed repos (relative redirects), commits
// pushed while running, and fault knobs (outages, 5xx bursts, slow, stalled, cut, corrupt
// transfers). Every request is recorded, so tests can prove that a warm start made none.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Hub is a running fake Hub and its CDN.
type Hub struct {
	// URL is the endpoint to use as HF_ENDPOINT.
	URL string
	// CDNURL is the storage host LFS downloads are redirected to.
	CDNURL string

	hub, cdn *httptest.Server
	closing  chan struct{}
	once     sync.Once

	mu      sync.Mutex
	repos   map[string]*repo
	renamed map[string]string
	blobs   map[string][]byte // sha256 → content, served by the CDN
	faults  Faults
	reqs    []*Request
	seq     int
}

// Request is one request either server received.
type Request struct {
	Server string // "hub" or "cdn"
	Method string
	Path   string // escaped path
	Query  string
	Range  string
	Auth   bool // an Authorization header was sent
	Status int  // status written (0 if the connection was dropped first)
}

func (r Request) String() string {
	return fmt.Sprintf("%s %s %s %d", r.Server, r.Method, r.Path, r.Status)
}

// RepoOptions configure a repo.
type RepoOptions struct {
	// Private repos answer 401/404 RepoNotFound unless Token is sent.
	Private bool
	// Gated repos answer 403 GatedRepo unless Token is sent.
	Gated bool
	// Token grants access to a private or gated repo.
	Token string
	// Commit is the id of the first commit (default: derived from the content).
	Commit string
	// LFS says which files are stored in LFS (redirected to the CDN); default DefaultLFS.
	LFS func(path string, size int) bool
}

// DefaultLFS follows the Hub's default .gitattributes: weights, graphs and data files.
func DefaultLFS(p string, size int) bool {
	if size >= 10<<20 || strings.HasSuffix(p, "_data") || strings.Contains(path.Base(p), ".onnx_data") {
		return true
	}
	switch path.Ext(p) {
	case ".onnx", ".data", ".bin", ".safetensors", ".npy", ".wav", ".pt", ".h5", ".msgpack", ".ckpt", ".gguf", ".ot":
		return true
	}
	return false
}

type repo struct {
	id      string
	opts    RepoOptions
	commits map[string]*commit
	refs    map[string]string // branch or tag → commit
}

type commit struct {
	id    string
	files map[string]*file
}

type file struct {
	data    []byte
	gitSHA1 string // git blob id
	sha256  string
	lfs     bool
	pointer string // git blob id of the LFS pointer file
}

// New starts a fake Hub and its CDN. Close stops them.
func New() *Hub {
	h := &Hub{
		closing: make(chan struct{}),
		repos:   map[string]*repo{},
		renamed: map[string]string{},
		blobs:   map[string][]byte{},
	}
	h.hub = httptest.NewServer(h.handler("hub", h.serveHub))
	h.cdn = httptest.NewServer(h.handler("cdn", h.serveCDN))
	h.URL, h.CDNURL = h.hub.URL, h.cdn.URL
	return h
}

// Start is New with t.Cleanup(Close).
func Start(t testing.TB) *Hub {
	h := New()
	t.Cleanup(h.Close)
	return h
}

// Close stops both servers; stalled transfers are released.
func (h *Hub) Close() {
	h.once.Do(func() {
		close(h.closing)
		h.hub.CloseClientConnections()
		h.cdn.CloseClientConnections()
		h.hub.Close()
		h.cdn.Close()
	})
}

// AddRepo creates a repo whose main branch holds files, and returns the commit id.
func (h *Hub) AddRepo(id string, files map[string][]byte, o RepoOptions) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o.LFS == nil {
		o.LFS = DefaultLFS
	}
	r := &repo{id: id, opts: o, commits: map[string]*commit{}, refs: map[string]string{}}
	h.repos[id] = r
	c := h.newCommit(r, nil, files, nil, o.Commit)
	r.refs["main"] = c.id
	return c.id
}

// AddFixture serves the directory dir as repo id (all its files, recursively).
func (h *Hub) AddFixture(id, dir string, o RepoOptions) (string, error) {
	files, err := ReadDir(dir)
	if err != nil {
		return "", err
	}
	return h.AddRepo(id, files, o), nil
}

// ReadDir reads every regular file under dir into a map keyed by slash paths.
func ReadDir(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hubtest: read %s: %w", dir, err)
	}
	return files, nil
}

// Push commits changes (nil content deletes a file) on top of branch and moves the branch;
// it returns the new commit id. This is what a model update on the Hub looks like.
func (h *Hub) Push(id, branch string, changes map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.mustRepo(id)
	parent := r.commits[r.refs[branch]]
	add := map[string][]byte{}
	var del []string
	for p, b := range changes {
		if b == nil {
			del = append(del, p)
		} else {
			add[p] = b
		}
	}
	c := h.newCommit(r, parent, add, del, "")
	r.refs[branch] = c.id
	return c.id
}

// SetRef points a branch or tag at an existing commit.
func (h *Hub) SetRef(id, ref, commitID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.mustRepo(id)
	if r.commits[commitID] == nil {
		panic("hubtest: unknown commit " + commitID)
	}
	r.refs[ref] = commitID
}

// Ref returns the commit a branch or tag points to ("" if none).
func (h *Hub) Ref(id, ref string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mustRepo(id).refs[ref]
}

// Rename moves a repo; requests for the old id get a relative 307 to the new one.
func (h *Hub) Rename(from, to string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.mustRepo(from)
	delete(h.repos, from)
	r.id = to
	h.repos[to] = r
	h.renamed[from] = to
}

// FileInfo describes a file as the Hub would: its cache blob name and whether it is in LFS.
type FileInfo struct {
	ETag    string // sha256 for LFS files, git blob sha1 otherwise
	GitSHA1 string
	SHA256  string
	LFS     bool
	Size    int
}

// File returns a file's metadata at a revision (ok false if absent).
func (h *Hub) File(id, rev, p string) (FileInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[id]
	if r == nil {
		return FileInfo{}, false
	}
	c := r.commit(rev)
	if c == nil || c.files[p] == nil {
		return FileInfo{}, false
	}
	f := c.files[p]
	fi := FileInfo{ETag: f.gitSHA1, GitSHA1: f.gitSHA1, SHA256: f.sha256, LFS: f.lfs, Size: len(f.data)}
	if f.lfs {
		fi.ETag = f.sha256
	}
	return fi, true
}

func (h *Hub) mustRepo(id string) *repo {
	r := h.repos[id]
	if r == nil {
		panic("hubtest: unknown repo " + id)
	}
	return r
}

func (r *repo) commit(rev string) *commit {
	if c := r.commits[rev]; c != nil {
		return c
	}
	if id, ok := r.refs[rev]; ok {
		return r.commits[id]
	}
	return nil
}

// newCommit builds a commit from parent plus add minus del. Callers hold h.mu.
func (h *Hub) newCommit(r *repo, parent *commit, add map[string][]byte, del []string, id string) *commit {
	files := map[string]*file{}
	if parent != nil {
		for p, f := range parent.files {
			files[p] = f
		}
	}
	for _, p := range del {
		delete(files, p)
	}
	for p, b := range add {
		files[p] = newFile(p, b, r.opts.LFS)
	}
	if id == "" {
		h.seq++
		s := sha1.New()
		fmt.Fprintf(s, "commit %s %d\n", r.id, h.seq)
		if parent != nil {
			fmt.Fprintf(s, "parent %s\n", parent.id)
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(s, "%s %s\n", files[p].gitSHA1, p)
		}
		id = hex.EncodeToString(s.Sum(nil))
	}
	c := &commit{id: id, files: files}
	r.commits[id] = c
	for _, f := range files {
		if f.lfs {
			h.blobs[f.sha256] = f.data
		}
	}
	return c
}

func newFile(p string, b []byte, lfs func(string, int) bool) *file {
	s256 := sha256.Sum256(b)
	f := &file{data: b, gitSHA1: GitBlobSHA1(b), sha256: hex.EncodeToString(s256[:]), lfs: lfs(p, len(b))}
	if f.lfs {
		ptr := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha256, len(b))
		f.pointer = GitBlobSHA1([]byte(ptr))
	}
	return f
}

// GitBlobSHA1 is git's blob id: sha1("blob <len>\x00" + content).
func GitBlobSHA1(b []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

// Requests returns a copy of the request log.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Request, len(h.reqs))
	for i, r := range h.reqs {
		out[i] = *r
	}
	return out
}

// RequestCount returns how many requests both servers received.
func (h *Hub) RequestCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

// CountRequests returns how many logged requests satisfy match.
func (h *Hub) CountRequests(match func(Request) bool) int {
	n := 0
	for _, r := range h.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// ResetRequests clears the request log.
func (h *Hub) ResetRequests() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// handler wraps a server's handler with logging and the connection-level faults.
func (h *Hub) handler(server string, serve func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		entry := &Request{Server: server, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization") != ""}
		h.mu.Lock()
		h.reqs = append(h.reqs, entry)
		f := &h.faults
		down := f.Down
		fail := 0
		if f.FailCount > 0 && matches(f.FailMatch, server, r) {
			f.FailCount--
			fail = f.FailStatus
		}
		retryAfter := f.RetryAfter
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			entry.Status = rec.status
			h.mu.Unlock()
		}()
		if down {
			dropConnection(w)
			return
		}
		if fail != 0 {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeError(rec, fail, "", "Service temporarily unavailable (hubtest fault)")
			return
		}
		serve(rec, r)
	})
}

func matches(pattern, server string, r *http.Request) bool {
	return pattern == "" || strings.Contains(server+" "+r.Method+" "+r.URL.Path, pattern)
}

// dropConnection closes the connection without a response (an unreachable Hub).
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// writeError answers like the Hub: X-Error-Code / X-Error-Message and {"error": msg}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// access applies the Hub's auth rules; it returns false after writing an error.
func (h *Hub) access(w http.ResponseWriter, r *http.Request, rp *repo, id string) bool {
	auth := r.Header.Get("Authorization")
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	if auth != "" && !h.knownToken(tok) {
		writeError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return false
	}
	notFound := func() bool {
		status := http.StatusNotFound
		if auth == "" {
			status = http.StatusUnauthorized // the Hub answers 401 to anonymous requests
		}
		writeError(w, status, "RepoNotFound", "Repository not found")
		return false
	}
	if rp == nil || (rp.opts.Private && tok != rp.opts.Token) {
		return notFound()
	}
	if rp.opts.Gated && tok != rp.opts.Token {
		writeError(w, http.StatusForbidden, "GatedRepo",
			fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", id))
		return false
	}
	return true
}

func (h *Hub) knownToken(tok string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.repos {
		if r.opts.Token != "" && r.opts.Token == tok {
			return true
		}
	}
	return false
}

// lookup finds a repo and commit under h.mu, following renames.
func (h *Hub) lookup(id, rev string) (rp *repo, c *commit, renamedTo string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if to, ok := h.renamed[id]; ok && h.repos[id] == nil {
		return nil, nil, to
	}
	rp = h.repos[id]
	if rp != nil {
		c = rp.commit(rev)
	}
	return rp, c, ""
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		h.serveAPI(w, r, rest)
		return
	}
	i := strings.Index(p, "/resolve/")
	if i <= 0 {
		writeError(w, http.StatusNotFound, "", "Not found")
		return
	}
	id, rest := p[1:i], p[i+len("/resolve/"):]
	escRev, escFile, _ := strings.Cut(rest, "/")
	rev, err1 := url.PathUnescape(escRev)
	file, err2 := url.PathUnescape(escFile)
	if err1 != nil || err2 != nil || file == "" {
		writeError(w, http.StatusBadRequest, "", "Bad request")
		return
	}
	rp, c, to := h.lookup(id, rev)
	if to != "" {
		loc := "/" + to + "/resolve/" + rest
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if !h.access(w, r, rp, id) {
		return
	}
	if c == nil {
		writeError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	w.Header().Set("X-Repo-Commit", c.id)
	fl := c.files[file]
	if fl == nil {
		writeError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if fl.lfs {
		w.Header().Set("X-Linked-Etag", `"`+fl.sha256+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(fl.data)))
		w.Header().Set("ETag", `"`+fl.pointer+`"`)
		w.Header().Set("Location", h.CDNURL+"/blobs/"+fl.sha256+"?X-Amz-Signature="+sign(fl.sha256)+"&X-Amz-Expires=3600")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+fl.gitSHA1+`"`)
	serveBody(w, r, fl.data, h, "hub")
}

// sign stands in for a pre-signed URL's signature.
func sign(sha string) string {
	s := sha256.Sum256([]byte("hubtest-cdn-secret:" + sha))
	return hex.EncodeToString(s[:8])
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sha, ok := strings.CutPrefix(r.URL.Path, "/blobs/")
	h.mu.Lock()
	data, found := h.blobs[sha]
	h.mu.Unlock()
	if !ok || !found {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	if r.URL.Query().Get("X-Amz-Signature") != sign(sha) {
		http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
		return
	}
	// Like S3: a pre-signed URL plus an Authorization header is an error.
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "InvalidArgument: Only one auth mechanism allowed", http.StatusBadRequest)
		return
	}
	w.Header().Set("ETag", `"cdn-`+sign(sha+"etag")+`"`) // not the sha256: clients must not use it
	serveBody(w, r, data, h, "cdn")
}
