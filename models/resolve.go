package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Hub resolves model references to snapshots in a Hugging Face cache, downloading from a
// Hub-compatible endpoint what a task needs. It is safe for concurrent use, and several
// processes may share its cache directory.
type Hub struct {
	cfg      HubConfig
	client   *hubClient
	cache    *Cache
	log      *slog.Logger
	progress Progress
}

// NewHub checks cfg and returns a Hub. cfg.CacheDir is required (HubConfigFromEnv sets it).
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("models: no cache directory configured")
	}
	cfg = cfg.withDefaults()
	client, err := newHubClient(cfg)
	if err != nil {
		return nil, err
	}
	cache := NewCache(cfg.CacheDir)
	cache.copyFiles = cfg.DisableSymlinks
	var progress Progress = newLogProgress(cfg.Logger)
	if cfg.Progress != nil {
		progress = cfg.Progress
	}
	return &Hub{cfg: cfg, client: client, cache: cache, log: cfg.Logger, progress: progress}, nil
}

// Cache returns the Hub's cache.
func (h *Hub) Cache() *Cache { return h.cache }

// Endpoint returns the Hub base URL in use.
func (h *Hub) Endpoint() string { return h.client.base() }

// PullOptions says which revision of a repo to resolve and which files it needs.
type PullOptions struct {
	// Revision is a branch, tag or full commit id (default "main").
	Revision string
	// Task selects the graphs ("text-generation" needs the decoder(s), speech recognition
	// the encoder and decoder, …). Empty: inferred from the repo's metadata files, as
	// Repo.InferTask does (README pipeline_tag, modules.json, config.json).
	Task string
	// ONNXFile picks a graph: a repo path ("onnx/model_quantized.onnx") or a variant name
	// ("quantized", "fp16", "int8", "uint8", "q4", "q4f16", "bnb4", or a transformers.js
	// dtype such as "q8"). Empty: the fp32 export.
	ONNXFile string
	// Update asks the Hub whether Revision moved even when the cache already holds a
	// complete snapshot for it. Without it a warm cache answers with no network request
	// (like TEI's hf-hub); updates then come from Refresh (webhooks) or `infergo pull`.
	Update bool
}

func (o PullOptions) normalize() (PullOptions, error) {
	if o.Revision == "" {
		o.Revision = "main"
	}
	if err := ValidateRevision(o.Revision); err != nil {
		return o, err
	}
	return o, nil
}

// Resolve is the entry point of `infergo serve`: a local directory is opened as it is
// (OpenDir); anything else must be a Hub id and is pulled into the cache (Pull).
func Resolve(ctx context.Context, ref string, o PullOptions, cfg HubConfig) (*Repo, error) {
	if IsLocalRef(ref) {
		return OpenDir(ref)
	}
	h, err := NewHub(cfg)
	if err != nil {
		return nil, err
	}
	return h.Pull(ctx, ref, o)
}

// Resolve opens a local directory as it is, or pulls a Hub id (see Pull).
func (h *Hub) Resolve(ctx context.Context, ref string, o PullOptions) (*Repo, error) {
	if IsLocalRef(ref) {
		return OpenDir(ref)
	}
	return h.Pull(ctx, ref, o)
}

// IsLocalRef reports a reference meant as a directory: one that exists, or that is written
// as a path (absolute, ./, ../, ~, or more than one slash), which Hub ids never are.
func IsLocalRef(ref string) bool {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return true
	}
	return filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~") ||
		strings.Count(ref, "/") > 1 || strings.ContainsRune(ref, '\\')
}

// Pull makes id@Revision available in the cache and returns its snapshot, with the files the
// task needs (metadata, the chosen graph(s), their external data) and nothing else.
//
//   - Offline (HF_HUB_OFFLINE): only the cache answers, with no network request; every
//     needed file must be there.
//   - A complete cached snapshot for Revision answers without a request unless Update is set
//     (a full commit id always does: commits are immutable).
//   - Otherwise one GET /api/models/{id}/revision/{rev} resolves the commit and lists the
//     files, and only missing files are downloaded (HEAD, then GET with resume).
//   - If the Hub cannot be reached (network error, timeout, 5xx), a complete cached snapshot
//     is used instead, as huggingface_hub does; otherwise the request is retried with backoff.
//     Not-found, gated and auth errors never fall back.
func (h *Hub) Pull(ctx context.Context, id string, o PullOptions) (*Repo, error) {
	return h.pull(ctx, id, o, true)
}

// Cached resolves id@Revision from the cache alone (no network), requiring every file the
// task needs.
func (h *Hub) Cached(id string, o PullOptions) (*Repo, error) {
	if err := ValidateRepoID(id); err != nil {
		return nil, err
	}
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	return h.fromCache(context.Background(), id, o)
}

// Check asks the Hub which commit revision points to now (one API request, with retries).
func (h *Hub) Check(ctx context.Context, id, revision string) (string, error) {
	if err := ValidateRepoID(id); err != nil {
		return "", err
	}
	o, err := PullOptions{Revision: revision}.normalize()
	if err != nil {
		return "", err
	}
	var commit string
	err = h.client.retry(ctx, "revision "+id, nil, func(ctx context.Context) error {
		var err error
		commit, _, err = h.client.repoListing(ctx, id, o.Revision)
		return err
	})
	return commit, err
}

// Refresh is the hot-reload step: it asks the Hub where o.Revision points now, downloads
// that snapshot's needed files if they are missing, moves refs/<revision>, and reports
// whether the commit differs from current. It does not fall back to the cache when the Hub
// is unreachable (the error is returned); offline it re-reads refs/ (another process may
// have pulled). Calling it again for an already-cached commit is a cheap no-op.
func (h *Hub) Refresh(ctx context.Context, id string, o PullOptions, current string) (repo *Repo, changed bool, err error) {
	o.Update = true
	repo, err = h.pull(ctx, id, o, false)
	if err != nil {
		return nil, false, err
	}
	return repo, repo.Commit != current, nil
}

func (h *Hub) pull(ctx context.Context, id string, o PullOptions, fallback bool) (*Repo, error) {
	start := time.Now()
	if err := ValidateRepoID(id); err != nil {
		return nil, err
	}
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	if h.cfg.Offline {
		repo, err := h.fromCache(ctx, id, o)
		if err != nil {
			return nil, fmt.Errorf("models: %s@%s is not fully cached in %s and offline mode is on (HF_HUB_OFFLINE); run `infergo pull %s` with network access, or unset HF_HUB_OFFLINE: %w", id, o.Revision, h.cache.root, id, err)
		}
		h.log.Info("model resolved from cache (offline)", "repo", id, "revision", o.Revision, "commit", repo.Commit)
		return repo, nil
	}
	if !o.Update || isCommit(o.Revision) {
		if repo, err := h.fromCache(ctx, id, o); err == nil {
			h.log.Info("model resolved from cache", "repo", id, "revision", o.Revision, "commit", repo.Commit)
			return repo, nil
		}
	}
	commit, l, err := h.client.repoListing(ctx, id, o.Revision)
	if err != nil && isTransient(err) && ctx.Err() == nil {
		if fallback {
			if repo, cerr := h.fromCache(ctx, id, o); cerr == nil {
				h.log.Warn("Hub unreachable; using the cached snapshot", "repo", id, "revision", o.Revision, "commit", repo.Commit, "endpoint", h.client.base(), "err", err)
				return repo, nil
			}
		}
		err = h.client.retry(ctx, "revision "+id, err, func(ctx context.Context) error {
			var err error
			commit, l, err = h.client.repoListing(ctx, id, o.Revision)
			return err
		})
	}
	if err != nil {
		if isTransient(err) {
			return nil, fmt.Errorf("models: cannot reach %s and %s@%s is not fully cached in %s: %w", h.client.base(), id, o.Revision, h.cache.root, err)
		}
		return nil, err
	}
	if err := h.cache.ensureRoot(); err != nil {
		return nil, err
	}
	if err := h.cache.writeTree(id, commit, l); err != nil {
		h.log.Warn("could not cache the file listing", "repo", id, "err", err)
	}
	var st fetchStats
	repo, err := h.materialize(ctx, id, commit, l, o, true, func(ctx context.Context, files []string) error {
		return h.fetchAll(ctx, id, commit, files, l, &st)
	})
	if err != nil {
		return nil, err
	}
	if err := h.cache.writeRef(id, o.Revision, commit); err != nil {
		return nil, err
	}
	h.log.Info("model ready", "repo", id, "revision", o.Revision, "commit", commit, "files", len(repo.Files),
		"downloaded_files", st.files.Load(), "downloaded_bytes", st.bytes.Load(), "took", time.Since(start).Round(time.Millisecond))
	return repo, nil
}

// fromCache resolves with no network: refs/ → commit → the listing cached in trees/ (or,
// for caches filled by other tools, the snapshot's own files) → the same file selection as
// online, each of which must be present.
func (h *Hub) fromCache(ctx context.Context, id string, o PullOptions) (*Repo, error) {
	commit, err := h.cache.commitFor(id, o.Revision)
	if err != nil {
		return nil, err
	}
	l, ok := h.cache.readTree(id, commit)
	if !ok {
		if l, err = h.cache.snapshotListing(id, commit); err != nil {
			return nil, err
		}
	}
	return h.materialize(ctx, id, commit, l, o, false, func(_ context.Context, files []string) error {
		var missing []string
		for _, f := range files {
			if !h.cache.hasFile(id, commit, f) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("models: %s@%s (%s): %s: %w", id, o.Revision, commit[:12], strings.Join(missing, ", "), ErrNotCached)
		}
		return nil
	})
}

// materialize applies the file selection to a listing, calling fetch for each wave of files
// (metadata, graphs, external data: each wave depends on the files of the one before).
// markAbsent records the metadata files the listing lacks; only a Hub listing knows that.
func (h *Hub) materialize(ctx context.Context, id, commit string, l listing, o PullOptions, markAbsent bool, fetch func(context.Context, []string) error) (*Repo, error) {
	meta, absent := metadataPlan(l)
	if err := fetch(ctx, meta); err != nil {
		return nil, err
	}
	repo := &Repo{Dir: h.cache.SnapshotDir(id, commit), ID: id, Commit: commit}
	task := o.Task
	if task == "" {
		if t, err := repo.InferTask(nil); err == nil {
			task = t
		}
	}
	graphs, err := selectGraphs(l, id, task, o.ONNXFile)
	if err != nil {
		return nil, err
	}
	if err := fetch(ctx, graphs); err != nil {
		return nil, err
	}
	var data []string
	for _, g := range graphs {
		locs, err := onnxExternalLocations(repo.Path(g))
		var paths []string
		if err == nil {
			paths, err = externalDataPaths(g, locs)
			if err != nil {
				return nil, err
			}
		} else {
			h.log.Warn("cannot read the graph's external data references; fetching files named like them", "repo", id, "graph", g, "err", err)
			paths = guessExternalData(l, g)
		}
		data = append(data, paths...)
	}
	if err := fetch(ctx, data); err != nil {
		return nil, err
	}
	// Record the metadata files this commit lacks, as huggingface_hub does after a 404, so
	// offline tools (transformers) skip them without asking.
	if markAbsent {
		for _, a := range absent {
			if err := h.cache.markMissing(id, commit, a); err != nil {
				h.log.Debug("could not write .no_exist marker", "file", a, "err", err)
			}
		}
	}
	files := append(append(append([]string{}, meta...), graphs...), data...)
	sort.Strings(files)
	repo.Files = files
	repo.Graphs = graphs
	return repo, nil
}

type fetchStats struct{ files, bytes atomic.Int64 }

// fetchAll downloads files concurrently (cfg.Workers at a time); the first failure cancels
// the others and is returned.
func (h *Hub) fetchAll(ctx context.Context, id, commit string, files []string, l listing, st *fetchStats) error {
	return forEach(ctx, h.cfg.Workers, files, func(ctx context.Context, f string) error {
		var known *RepoFile
		if rf, ok := l[f]; ok {
			known = &rf
		}
		n, err := h.ensureFile(ctx, id, commit, f, known)
		if n > 0 {
			st.files.Add(1)
			st.bytes.Add(n)
		}
		return err
	})
}

func forEach(ctx context.Context, workers int, items []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(workers, 1))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// ensureFile makes snapshots/<commit>/<file> present and returns the bytes downloaded.
// known is the listing's entry, if any: when its blob is already cached (shared with
// another commit) the file is linked without asking the Hub.
func (h *Hub) ensureFile(ctx context.Context, id, commit, file string, known *RepoFile) (int64, error) {
	if h.cache.hasFile(id, commit, file) {
		return 0, nil
	}
	if known != nil && validateETag(known.etag()) == nil && known.Size >= 0 && h.cache.hasBlob(id, known.etag(), known.Size) {
		unlock, err := h.cache.lockBlob(ctx, id, known.etag())
		if err != nil {
			return 0, err
		}
		defer unlock()
		return 0, h.cache.linkBlob(id, commit, file, known.etag())
	}
	m, err := h.head(ctx, id, commit, file, nil)
	if err != nil {
		h.noteMissing(err, id, "", file)
		return 0, err
	}
	if m.Commit != commit {
		return 0, fmt.Errorf("models: %s: asked for %s at commit %s, the Hub answered commit %s", id, file, commit, m.Commit)
	}
	// The HEAD is authoritative (huggingface_hub uses nothing else); a listing that
	// disagrees is worth a warning, not a failure, with Hub-compatible mirrors about.
	if known != nil && ((known.etag() != "" && known.etag() != m.ETag) || (known.Size >= 0 && known.Size != m.Size)) {
		h.log.Warn("file listing and file metadata disagree; using the metadata", "repo", id, "file", file,
			"listing_etag", known.etag(), "etag", m.ETag, "listing_size", known.Size, "size", m.Size)
	}
	return h.fetchBlob(ctx, id, commit, file, m)
}

// head sends the metadata HEAD with retries (prev: an error from an attempt already made)
// and arms the result to refresh its download URL from the same commit if storage refuses
// it later.
func (h *Hub) head(ctx context.Context, id, rev, file string, prev error) (fileMeta, error) {
	var m fileMeta
	err := h.client.retry(ctx, "metadata "+file, prev, func(ctx context.Context) error {
		var err error
		m, err = h.client.headFile(ctx, id, rev, file)
		return err
	})
	if err != nil {
		return m, err
	}
	h.armRelocate(&m, id, file)
	return m, nil
}

func (h *Hub) armRelocate(m *fileMeta, id, file string) {
	commit, etag, size := m.Commit, m.ETag, m.Size
	m.relocate = func(ctx context.Context) (string, error) {
		fresh, err := h.head(ctx, id, commit, file, nil)
		if err != nil {
			return "", err
		}
		if fresh.ETag != etag || fresh.Size != size {
			return "", fmt.Errorf("models: %s %s changed on the Hub during the download", id, file)
		}
		return fresh.Location, nil
	}
}

// fetchBlob downloads the blob (unless another process already has) and links it, holding
// the blob's lock throughout, as huggingface_hub does.
func (h *Hub) fetchBlob(ctx context.Context, id, commit, file string, m fileMeta) (int64, error) {
	unlock, err := h.cache.lockBlob(ctx, id, m.ETag)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var n int64
	if !h.cache.hasBlob(id, m.ETag, m.Size) {
		if n, err = h.downloadBlob(ctx, id, file, m); err != nil {
			return n, err
		}
	}
	return n, h.cache.linkBlob(id, commit, file, m.ETag)
}

// noteMissing writes .no_exist/<commit>/<file> (and the ref) after an EntryNotFound that
// carried X-Repo-Commit.
func (h *Hub) noteMissing(err error, id, revision, file string) {
	var he *HubError
	if !errors.As(err, &he) || !errors.Is(err, ErrEntryNotFound) || he.Commit == "" {
		return
	}
	if err := h.cache.markMissing(id, he.Commit, file); err != nil {
		h.log.Debug("could not write .no_exist marker", "file", file, "err", err)
	}
	if revision != "" {
		_ = h.cache.writeRef(id, revision, he.Commit)
	}
}

// DownloadFile fetches one file the way huggingface_hub's hf_hub_download does and returns
// its path in the snapshot: a cached file at a full commit id needs no request; otherwise a
// HEAD resolves the commit and the blob is downloaded if missing, and refs/<revision> is
// updated. Offline, or when the Hub is unreachable, the cache answers (ErrNotCached if it
// cannot); a file known to be missing (.no_exist) is ErrEntryNotFound.
func (h *Hub) DownloadFile(ctx context.Context, id, revision, file string) (string, error) {
	if err := ValidateRepoID(id); err != nil {
		return "", err
	}
	if err := ValidateRepoPath(file); err != nil {
		return "", err
	}
	o, err := PullOptions{Revision: revision}.normalize()
	if err != nil {
		return "", err
	}
	rev := o.Revision
	if isCommit(rev) && h.cache.hasFile(id, rev, file) {
		return h.cache.pointerPath(id, rev, file), nil
	}
	if h.cfg.Offline {
		return h.cachedFile(id, rev, file)
	}
	m, err := h.client.headFile(ctx, id, rev, file)
	if err != nil && isTransient(err) && ctx.Err() == nil {
		if p, cerr := h.cachedFile(id, rev, file); cerr == nil {
			h.log.Warn("Hub unreachable; using the cached file", "repo", id, "file", file, "err", err)
			return p, nil
		}
	}
	if err == nil {
		h.armRelocate(&m, id, file)
	} else if isTransient(err) && ctx.Err() == nil {
		m, err = h.head(ctx, id, rev, file, err)
	}
	if err != nil {
		h.noteMissing(err, id, rev, file)
		return "", err
	}
	if err := h.cache.ensureRoot(); err != nil {
		return "", err
	}
	if !h.cache.hasFile(id, m.Commit, file) {
		if _, err := h.fetchBlob(ctx, id, m.Commit, file, m); err != nil {
			return "", err
		}
	}
	if err := h.cache.writeRef(id, rev, m.Commit); err != nil {
		return "", err
	}
	return h.cache.pointerPath(id, m.Commit, file), nil
}

// cachedFile is huggingface_hub's try_to_load_from_cache.
func (h *Hub) cachedFile(id, rev, file string) (string, error) {
	commit, err := h.cache.commitFor(id, rev)
	if err != nil {
		return "", err
	}
	if h.cache.knownMissing(id, commit, file) {
		return "", &HubError{Kind: ErrEntryNotFound, RepoID: id, Revision: rev, Path: file, Commit: commit, Message: "known missing (cached .no_exist marker)"}
	}
	if h.cache.hasFile(id, commit, file) {
		return h.cache.pointerPath(id, commit, file), nil
	}
	return "", fmt.Errorf("models: %s@%s %s: %w", id, rev, file, ErrNotCached)
}
