package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CachedRepo describes one repo in the cache (like huggingface_hub's scan_cache_dir).
type CachedRepo struct {
	Type         string // "model", "dataset" or "space"
	ID           string
	Path         string
	Size         int64 // bytes of blobs (and copied snapshot files) on disk
	Files        int   // blobs
	LastModified time.Time
	Revisions    []CachedRevision // newest first
	Incomplete   int              // .incomplete downloads waiting to be resumed
}

// CachedRevision is one snapshot of a cached repo.
type CachedRevision struct {
	Commit       string
	Refs         []string // refs pointing here ("main", "v1.0", "refs/pr/1")
	Path         string
	Files        int
	Size         int64 // bytes of the files the snapshot points to
	LastModified time.Time
}

// Refs returns every ref of the repo, sorted.
func (r CachedRepo) Refs() []string {
	var out []string
	for _, rev := range r.Revisions {
		out = append(out, rev.Refs...)
	}
	sort.Strings(out)
	return out
}

// Scan lists the repos in the cache. Folders that do not follow the layout are skipped.
func (c *Cache) Scan() ([]CachedRepo, error) {
	entries, err := os.ReadDir(c.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("models: scan cache: %w", err)
	}
	var out []CachedRepo
	for _, e := range entries {
		typ, id, ok := parseRepoFolder(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		r, err := c.scanRepo(filepath.Join(c.root, e.Name()), typ, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// parseRepoFolder inverts repoFolderName: "models--org--name" → ("model", "org/name").
func parseRepoFolder(name string) (typ, id string, ok bool) {
	kind, rest, found := strings.Cut(name, "--")
	if !found {
		return "", "", false
	}
	switch kind {
	case "models", "datasets", "spaces":
	default:
		return "", "", false
	}
	id = strings.ReplaceAll(rest, "--", "/")
	if ValidateRepoID(id) != nil {
		return "", "", false
	}
	return strings.TrimSuffix(kind, "s"), id, true
}

func (c *Cache) scanRepo(dir, typ, id string) (CachedRepo, error) {
	r := CachedRepo{Type: typ, ID: id, Path: dir}
	blobSizes := map[string]int64{}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	for _, b := range blobs {
		info, err := b.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if strings.HasSuffix(b.Name(), ".incomplete") {
			r.Incomplete++
			continue
		}
		blobSizes[b.Name()] = info.Size()
		r.Size += info.Size()
		r.Files++
		r.LastModified = later(r.LastModified, info.ModTime())
	}
	refs := c.refsOf(dir)
	snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	for _, s := range snaps {
		if !s.IsDir() {
			continue
		}
		rev := CachedRevision{Commit: s.Name(), Path: filepath.Join(dir, "snapshots", s.Name()), Refs: refs[s.Name()]}
		seen := map[string]bool{}
		_ = filepath.WalkDir(rev.Path, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
			rev.Files++
			rev.LastModified = later(rev.LastModified, st.ModTime())
			if target, err := os.Readlink(p); err == nil {
				name := filepath.Base(target)
				if !seen[name] {
					seen[name] = true
					rev.Size += st.Size()
				}
				return nil
			}
			rev.Size += st.Size() // a copy (symlinks disabled) also takes disk space
			r.Size += st.Size()
			return nil
		})
		sort.Strings(rev.Refs)
		r.Revisions = append(r.Revisions, rev)
	}
	sort.Slice(r.Revisions, func(i, j int) bool { return r.Revisions[i].LastModified.After(r.Revisions[j].LastModified) })
	return r, nil
}

// refsOf maps commit → ref names for a repo folder.
func (c *Cache) refsOf(dir string) map[string][]string {
	out := map[string][]string{}
	root := filepath.Join(dir, "refs")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".tmp") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		commit := strings.TrimSpace(string(b))
		out[commit] = append(out[commit], filepath.ToSlash(rel))
		return nil
	})
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// RemoveResult reports what Remove deleted.
type RemoveResult struct {
	Snapshots []string // commits removed
	Refs      []string // refs removed
	Blobs     int      // blobs removed
	Freed     int64    // bytes freed
	Kept      int      // blobs kept because a download holds their lock
}

// Remove deletes a model repo from the cache. With revision empty the whole repo goes
// (and its locks); otherwise the snapshot that revision names (a ref, a full commit or a
// commit prefix of 7+ characters), the refs pointing to it, and the blobs no remaining
// snapshot uses. A blob whose lock is held (being downloaded or linked) is kept.
func (c *Cache) Remove(id, revision string) (RemoveResult, error) {
	var res RemoveResult
	if err := ValidateRepoID(id); err != nil {
		return res, err
	}
	dir := c.RepoDir(id)
	if _, err := os.Stat(dir); err != nil {
		return res, fmt.Errorf("models: %s is not in the cache %s: %w", id, c.root, ErrNotCached)
	}
	if revision == "" {
		repo, err := c.scanRepo(dir, "model", id)
		if err != nil {
			return res, err
		}
		for _, rev := range repo.Revisions {
			res.Snapshots = append(res.Snapshots, rev.Commit)
			res.Refs = append(res.Refs, rev.Refs...)
		}
		res.Blobs, res.Freed = repo.Files, repo.Size
		if err := os.RemoveAll(dir); err != nil {
			return res, fmt.Errorf("models: remove %s: %w", dir, err)
		}
		_ = os.RemoveAll(filepath.Join(c.root, ".locks", repoFolderName("model", id)))
		return res, nil
	}
	commit, err := c.matchRevision(id, revision)
	if err != nil {
		return res, err
	}
	for commitOfRef, names := range c.refsOf(dir) {
		if commitOfRef != commit {
			continue
		}
		for _, n := range names {
			if err := os.Remove(filepath.Join(dir, "refs", filepath.FromSlash(n))); err != nil {
				return res, fmt.Errorf("models: %w", err)
			}
			res.Refs = append(res.Refs, n)
		}
	}
	for _, p := range []string{c.SnapshotDir(id, commit), filepath.Join(dir, ".no_exist", commit), c.treePath(id, commit)} {
		if err := os.RemoveAll(p); err != nil {
			return res, fmt.Errorf("models: %w", err)
		}
	}
	res.Snapshots = []string{commit}
	used := c.usedBlobs(dir)
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	for _, b := range blobs {
		name := b.Name()
		etag := strings.TrimSuffix(name, ".incomplete")
		if used[etag] || validateETag(etag) != nil {
			continue
		}
		unlock, ok := c.tryLockBlob(id, etag)
		if !ok {
			res.Kept++
			continue
		}
		info, _ := b.Info()
		err := os.Remove(filepath.Join(dir, "blobs", name))
		unlock()
		if err != nil {
			return res, fmt.Errorf("models: %w", err)
		}
		if info != nil {
			res.Freed += info.Size()
		}
		if !strings.HasSuffix(name, ".incomplete") {
			res.Blobs++
		}
	}
	if snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots")); len(snaps) == 0 && res.Kept == 0 {
		_ = os.RemoveAll(dir)
		_ = os.RemoveAll(filepath.Join(c.root, ".locks", repoFolderName("model", id)))
	}
	return res, nil
}

// matchRevision finds the cached commit a ref, a commit or a commit prefix names.
func (c *Cache) matchRevision(id, revision string) (string, error) {
	if ValidateRevision(revision) == nil {
		if commit, err := c.ReadRef(id, revision); err == nil {
			return commit, nil
		}
	}
	snaps, _ := os.ReadDir(filepath.Join(c.RepoDir(id), "snapshots"))
	var found []string
	for _, s := range snaps {
		if s.Name() == revision || (len(revision) >= 7 && strings.HasPrefix(s.Name(), revision)) {
			found = append(found, s.Name())
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("models: %s has no cached revision %q: %w", id, revision, ErrNotCached)
	}
	return "", fmt.Errorf("models: revision %q of %s is ambiguous (%s)", revision, id, strings.Join(found, ", "))
}

// usedBlobs returns the blob names the remaining snapshots link to.
func (c *Cache) usedBlobs(dir string) map[string]bool {
	used := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(dir, "snapshots"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if target, err := os.Readlink(p); err == nil {
			used[filepath.Base(target)] = true
		}
		return nil
	})
	return used
}
