package models

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// Cache is a Hugging Face hub cache directory, laid out exactly as huggingface_hub writes it
// (hf-inference-api.md §5.6), so Python tools, TEI and transformers.js can share it:
//
//	<root>/.locks/models--org--name/<etag>.lock
//	<root>/models--org--name/blobs/<etag>                  sha256 (LFS) or git sha1
//	<root>/models--org--name/refs/<revision>               the commit, no newline
//	<root>/models--org--name/snapshots/<commit>/<path>     relative symlink → ../../blobs/<etag>
//	<root>/models--org--name/.no_exist/<commit>/<path>     empty: known missing
//	<root>/models--org--name/trees/<commit>.json           the commit's file listing
//
// Every write is atomic (temp file + rename); blob downloads hold a per-blob file lock
// (flock(2), the same lock huggingface_hub's filelock takes), so several processes can
// fill one cache.
type Cache struct {
	root      string
	copyFiles bool // HF_HUB_DISABLE_SYMLINKS: snapshots hold copies, not links
}

// NewCache returns the cache rooted at root (created on first write).
func NewCache(root string) *Cache { return &Cache{root: filepath.Clean(root)} }

// Root returns the cache root directory.
func (c *Cache) Root() string { return c.root }

// RepoDir returns models--org--name under the root. id must be valid (ValidateRepoID).
func (c *Cache) RepoDir(id string) string {
	return filepath.Join(c.root, repoFolderName("model", id))
}

// SnapshotDir returns snapshots/<commit> of a repo.
func (c *Cache) SnapshotDir(id, commit string) string {
	return filepath.Join(c.RepoDir(id), "snapshots", commit)
}

func (c *Cache) blobPath(id, etag string) string {
	return filepath.Join(c.RepoDir(id), "blobs", etag)
}

func (c *Cache) pointerPath(id, commit, file string) string {
	return filepath.Join(c.SnapshotDir(id, commit), filepath.FromSlash(file))
}

func (c *Cache) lockPath(id, etag string) string {
	return filepath.Join(c.root, ".locks", repoFolderName("model", id), etag+".lock")
}

// ReadRef returns the commit refs/<revision> points to. A missing ref is ErrNotCached.
// The content is trimmed (huggingface_hub writes no newline, other writers might).
func (c *Cache) ReadRef(id, revision string) (string, error) {
	if err := ValidateRepoID(id); err != nil {
		return "", err
	}
	if err := ValidateRevision(revision); err != nil {
		return "", err
	}
	p := filepath.Join(c.RepoDir(id), "refs", filepath.FromSlash(revision))
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("models: %s@%s: no ref in %s: %w", id, revision, c.root, ErrNotCached)
		}
		return "", fmt.Errorf("models: read ref: %w", err)
	}
	commit := strings.TrimSpace(string(b))
	if !isCommit(commit) {
		return "", fmt.Errorf("models: %s holds %.60q, not a commit id", p, commit)
	}
	return commit, nil
}

// writeRef points refs/<revision> at commit, atomically and without a trailing newline
// (huggingface_hub reads the file without trimming).
func (c *Cache) writeRef(id, revision, commit string) error {
	if revision == commit {
		return nil // huggingface_hub only writes refs for branches and tags
	}
	p := filepath.Join(c.RepoDir(id), "refs", filepath.FromSlash(revision))
	if b, err := os.ReadFile(p); err == nil && string(b) == commit {
		return nil
	}
	return writeFileAtomic(p, []byte(commit))
}

// commitFor resolves a revision to a commit from the cache alone: a full commit id whose
// snapshot exists is itself, anything else goes through refs/.
func (c *Cache) commitFor(id, revision string) (string, error) {
	if isCommit(revision) {
		if st, err := os.Stat(c.SnapshotDir(id, revision)); err == nil && st.IsDir() {
			return revision, nil
		}
		return "", fmt.Errorf("models: %s@%s: no snapshot in %s: %w", id, revision, c.root, ErrNotCached)
	}
	return c.ReadRef(id, revision)
}

// hasFile reports whether snapshots/<commit>/<file> is (or links to) a regular file.
func (c *Cache) hasFile(id, commit, file string) bool {
	st, err := os.Stat(c.pointerPath(id, commit, file))
	return err == nil && st.Mode().IsRegular()
}

func (c *Cache) noExistPath(id, commit, file string) string {
	return filepath.Join(c.RepoDir(id), ".no_exist", commit, filepath.FromSlash(file))
}

// knownMissing reports a .no_exist marker: the file is known not to exist at commit.
func (c *Cache) knownMissing(id, commit, file string) bool {
	_, err := os.Lstat(c.noExistPath(id, commit, file))
	return err == nil
}

// markMissing writes the empty .no_exist/<commit>/<file> marker.
func (c *Cache) markMissing(id, commit, file string) error {
	p := c.noExistPath(id, commit, file)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	return writeFileAtomic(p, nil)
}

// hasBlob reports whether blobs/<etag> exists with the expected size (size < 0: any).
func (c *Cache) hasBlob(id, etag string, size int64) bool {
	st, err := os.Stat(c.blobPath(id, etag))
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

// linkBlob makes snapshots/<commit>/<file> a relative symlink to blobs/<etag> (or a copy
// when symlinks are disabled or unsupported), replacing any previous pointer atomically.
func (c *Cache) linkBlob(id, commit, file, etag string) error {
	ptr := c.pointerPath(id, commit, file)
	blob := c.blobPath(id, etag)
	if err := os.MkdirAll(filepath.Dir(ptr), 0o755); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if !c.copyFiles {
		rel, err := filepath.Rel(filepath.Dir(ptr), blob)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		tmp := ptr + "." + randomHex(4) + ".tmp"
		err = os.Symlink(rel, tmp)
		if err == nil {
			if err := os.Rename(tmp, ptr); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("models: link %s: %w", file, err)
			}
			return nil
		}
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return fmt.Errorf("models: link %s: %w", file, err)
		}
		// Filesystems without symlinks (some network mounts): copy, as huggingface_hub does.
	}
	src, err := os.Open(blob)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	defer src.Close()
	return writeAtomic(ptr, func(w io.Writer) error { _, err := io.Copy(w, src); return err })
}

// treeFile is huggingface_hub's trees/<commit>.json (format_version 1, _tree_cache.py).
type treeFile struct {
	FormatVersion int                  `json:"format_version"`
	Files         map[string]treeEntry `json:"files"`
}

type treeEntry struct {
	Size      int64  `json:"size"`
	BlobID    string `json:"blob_id"`
	LFSSHA256 string `json:"lfs_sha256,omitempty"`
	LFSSize   int64  `json:"lfs_size,omitempty"`
	XetHash   string `json:"xet_hash,omitempty"`
}

func (c *Cache) treePath(id, commit string) string {
	return filepath.Join(c.RepoDir(id), "trees", commit+".json")
}

// readTree loads a cached listing; ok is false when there is none (or it is unreadable, or
// of an unknown format, which huggingface_hub also ignores).
func (c *Cache) readTree(id, commit string) (listing, bool) {
	b, err := os.ReadFile(c.treePath(id, commit))
	if err != nil {
		return nil, false
	}
	var t treeFile
	if err := json.Unmarshal(b, &t); err != nil || t.FormatVersion != 1 || t.Files == nil {
		return nil, false
	}
	l := make(listing, len(t.Files))
	for p, e := range t.Files {
		if ValidateRepoPath(p) != nil {
			continue
		}
		l[p] = RepoFile{Path: p, Size: e.Size, BlobID: e.BlobID, LFSSHA256: e.LFSSHA256, LFSSize: e.LFSSize}
	}
	return l, true
}

// writeTree stores a commit's listing; commits are immutable, so it never needs refreshing.
func (c *Cache) writeTree(id, commit string, l listing) error {
	t := treeFile{FormatVersion: 1, Files: make(map[string]treeEntry, len(l))}
	for p, f := range l {
		t.Files[p] = treeEntry{Size: f.Size, BlobID: f.BlobID, LFSSHA256: f.LFSSHA256, LFSSize: f.LFSSize}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ") // json.dump(indent=1), map keys sorted like the Python writer
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	return writeFileAtomic(c.treePath(id, commit), bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// snapshotListing lists the files of a snapshot directory (what a cache filled by another
// tool holds when there is no trees/<commit>.json).
func (c *Cache) snapshotListing(id, commit string) (listing, error) {
	dir := c.SnapshotDir(id, commit)
	l := listing{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(rel, ".tmp") || ValidateRepoPath(rel) != nil {
			return nil
		}
		st, err := os.Stat(p) // follows the symlink into blobs/
		if err != nil || !st.Mode().IsRegular() {
			return nil // dangling link: not a usable file
		}
		l[rel] = RepoFile{Path: rel, Size: st.Size()}
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("models: %s@%s: no snapshot in %s: %w", id, commit, c.root, ErrNotCached)
		}
		return nil, fmt.Errorf("models: list snapshot: %w", err)
	}
	return l, nil
}

// lockBlob takes the per-blob lock, waiting (and honouring ctx) while another goroutine or
// process holds it.
func (c *Cache) lockBlob(ctx context.Context, id, etag string) (unlock func(), err error) {
	p := c.lockPath(id, etag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("models: lock dir: %w", err)
	}
	fl := flock.New(p)
	ok, err := fl.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("models: lock %s: %w", p, err)
	}
	if !ok {
		return nil, fmt.Errorf("models: lock %s: %w", p, ctx.Err())
	}
	return func() { _ = fl.Unlock() }, nil
}

// tryLockBlob takes the per-blob lock only if it is free (used by removal, which must
// never delete a blob that a download is writing or linking).
func (c *Cache) tryLockBlob(id, etag string) (unlock func(), ok bool) {
	p := c.lockPath(id, etag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, false
	}
	fl := flock.New(p)
	if locked, err := fl.TryLock(); err != nil || !locked {
		return nil, false
	}
	return func() { _ = fl.Unlock() }, true
}

// ensureRoot creates the root and, once, a CACHEDIR.TAG so backup tools skip the cache.
func (c *Cache) ensureRoot() error {
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return fmt.Errorf("models: cache dir: %w", err)
	}
	tag := filepath.Join(c.root, "CACHEDIR.TAG")
	if _, err := os.Lstat(tag); errors.Is(err, fs.ErrNotExist) {
		_ = writeFileAtomic(tag, []byte("Signature: 8a477f597d28d172789f06886806bc55\n"+
			"# This file is a cache directory tag created by Infergo (Hugging Face hub cache).\n"+
			"# For information about cache directory tags see https://bford.info/cachedir/\n"))
	}
	return nil
}

// writeFileAtomic writes data to path through a temp file in the same directory and a
// rename, so readers see the old content or the new, never a torn file.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

func writeAtomic(path string, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes 0600; caches are shared between users/containers
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("models: write %s: %w", path, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sortedPaths returns a listing's paths in order (deterministic logs and plans).
func (l listing) sortedPaths() []string {
	out := make([]string, 0, len(l))
	for p := range l {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
