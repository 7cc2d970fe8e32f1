package models

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestScanAndRemove(t *testing.T) {
	fh, first := embRepo(t)
	h := testHub(t, fh)
	pull(t, h, "org/emb", PullOptions{})
	second := fh.Push("org/emb", "main", map[string][]byte{"tokenizer_config.json": []byte(`{"model_max_length": 64}`)})
	if _, changed, err := h.Refresh(t.Context(), "org/emb", PullOptions{}, first); err != nil || !changed {
		t.Fatal(err)
	}
	c := h.Cache()
	// Entries that are not repos are ignored; other repo types are listed.
	os.MkdirAll(filepath.Join(c.Root(), "datasets--org--data", "snapshots"), 0o755)
	os.MkdirAll(filepath.Join(c.Root(), "not-a-repo"), 0o755)

	repos, err := c.Scan()
	if err != nil || len(repos) != 2 {
		t.Fatalf("Scan: %+v, %v", repos, err)
	}
	if repos[0].ID != "org/data" || repos[0].Type != "dataset" {
		t.Errorf("repos[0] = %+v", repos[0])
	}
	emb := repos[1]
	if emb.ID != "org/emb" || emb.Type != "model" || len(emb.Revisions) != 2 || emb.Files != 9 || !reflect.DeepEqual(emb.Refs(), []string{"main"}) {
		t.Errorf("repo %+v", emb)
	}
	var total int64
	for _, f := range embFiles {
		info, _ := fh.File("org/emb", first, f)
		total += int64(info.Size)
	}
	newInfo, _ := fh.File("org/emb", second, "tokenizer_config.json")
	if emb.Size != total+int64(newInfo.Size) {
		t.Errorf("size %d, want %d", emb.Size, total+int64(newInfo.Size))
	}
	for _, rev := range emb.Revisions {
		if rev.Files != 8 || rev.Size <= 0 || (rev.Commit == second) != reflect.DeepEqual(rev.Refs, []string{"main"}) {
			t.Errorf("revision %+v", rev)
		}
	}

	// Removing the old revision frees only the blob no other snapshot uses.
	oldInfo, _ := fh.File("org/emb", first, "tokenizer_config.json")
	res, err := c.Remove("org/emb", first[:10])
	if err != nil || res.Blobs != 1 || res.Freed != int64(oldInfo.Size) || len(res.Refs) != 0 {
		t.Errorf("Remove old: %+v, %v", res, err)
	}
	if _, err := h.Cached("org/emb", PullOptions{}); err != nil {
		t.Errorf("current revision broken: %v", err)
	}
	if _, err := os.Stat(c.SnapshotDir("org/emb", first)); err == nil {
		t.Error("old snapshot still there")
	}
	// Removing the last revision (by ref) removes the repo.
	res, err = c.Remove("org/emb", "main")
	if err != nil || res.Blobs != 8 || !reflect.DeepEqual(res.Refs, []string{"main"}) {
		t.Errorf("Remove main: %+v, %v", res, err)
	}
	if _, err := os.Stat(c.RepoDir("org/emb")); err == nil {
		t.Error("repo dir still there")
	}
	if _, err := c.Remove("org/emb", ""); !errors.Is(err, ErrNotCached) {
		t.Errorf("remove missing: %v", err)
	}
	pull(t, h, "org/emb", PullOptions{})
	if res, err := c.Remove("org/emb", ""); err != nil || res.Blobs != 8 || len(res.Snapshots) != 1 {
		t.Errorf("remove all: %+v, %v", res, err)
	}
	for _, p := range []string{c.RepoDir("org/emb"), filepath.Join(c.Root(), ".locks", "models--org--emb")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := c.Remove("org/emb", "deadbeef"); !errors.Is(err, ErrNotCached) {
		t.Errorf("unknown revision: %v", err)
	}
}

// TestRemoveKeepsLockedBlobs: a blob whose lock is held (a download in progress) survives.
func TestRemoveKeepsLockedBlobs(t *testing.T) {
	fh, commit := embRepo(t)
	h := testHub(t, fh)
	pull(t, h, "org/emb", PullOptions{})
	info, _ := fh.File("org/emb", commit, dataFile)
	unlock, err := h.Cache().lockBlob(t.Context(), "org/emb", info.ETag)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Cache().Remove("org/emb", commit)
	unlock()
	if err != nil || res.Kept != 1 || res.Blobs != 7 {
		t.Errorf("%+v, %v", res, err)
	}
	if !h.Cache().hasBlob("org/emb", info.ETag, -1) {
		t.Error("locked blob removed")
	}
}
