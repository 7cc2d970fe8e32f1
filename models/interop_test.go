package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

// embFiles are the files Infergo needs from tiny-bert-embeddings.
var embFiles = []string{"1_Pooling/config.json", "config.json", "modules.json", "onnx/model.onnx", "onnx/model.onnx_data",
	"sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"}

// writePythonCache lays files out exactly as huggingface_hub's hf_hub_download writes them
// (file_download.py): blobs named by the sha256 for LFS files and the git blob sha1
// otherwise, snapshots/<commit>/<path> as relative symlinks made with
// os.path.relpath(blob, dirname(pointer)), refs/<revision> holding the commit with no newline.
func writePythonCache(t *testing.T, root, id, commit, fixture string, files []string) {
	t.Helper()
	repoDir := filepath.Join(root, "models--"+strings.ReplaceAll(id, "/", "--"))
	for _, f := range files {
		b, err := os.ReadFile(testutil.Fixture(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		etag := hubtest.GitBlobSHA1(b)
		if hubtest.DefaultLFS(f, len(b)) {
			s := sha256.Sum256(b)
			etag = hex.EncodeToString(s[:])
		}
		blob := filepath.Join(repoDir, "blobs", etag)
		ptr := filepath.Join(repoDir, "snapshots", commit, f)
		for _, d := range []string{filepath.Dir(blob), filepath.Dir(ptr)} {
			os.MkdirAll(d, 0o755)
		}
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(filepath.Dir(ptr), blob)
		if err := os.Symlink(rel, ptr); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755)
	if err := os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadsHuggingFaceHubCache: a cache written by Python (no trees/ listing) resolves
// offline with no request.
func TestReadsHuggingFaceHubCache(t *testing.T) {
	root := t.TempDir()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	writePythonCache(t, root, "sentence-transformers/tiny", commit, "tiny-bert-embeddings", append(embFiles, "golden.json"))
	// Transformers leaves .no_exist markers for optional files.
	marker := filepath.Join(root, "models--sentence-transformers--tiny", ".no_exist", commit, "generation_config.json")
	os.MkdirAll(filepath.Dir(marker), 0o755)
	os.WriteFile(marker, nil, 0o644)

	fh := hubtest.Start(t)
	h := testHub(t, fh, withCache(root), func(c *HubConfig) { c.Offline = true })
	r := pull(t, h, "sentence-transformers/tiny", PullOptions{})
	if r.Commit != commit || r.Dir != filepath.Join(root, "models--sentence-transformers--tiny", "snapshots", commit) {
		t.Errorf("repo %+v", r)
	}
	if !reflect.DeepEqual(r.Files, embFiles) || !reflect.DeepEqual(r.Graphs, []string{"onnx/model.onnx"}) {
		t.Errorf("files %q graphs %q", r.Files, r.Graphs)
	}
	if _, err := h.DownloadFile(t.Context(), "sentence-transformers/tiny", "main", "generation_config.json"); !errors.Is(err, ErrEntryNotFound) {
		t.Errorf("known-missing file: %v", err)
	}
	// Online with the default policy the complete snapshot also answers without a request.
	online := testHub(t, fh, withCache(root))
	if r := pull(t, online, "sentence-transformers/tiny", PullOptions{}); r.Commit != commit {
		t.Errorf("online: %s", r.Commit)
	}
	// A ref written with a trailing newline (by another tool) still resolves.
	os.WriteFile(filepath.Join(root, "models--sentence-transformers--tiny", "refs", "main"), []byte(commit+"\n"), 0o644)
	if r := pull(t, h, "sentence-transformers/tiny", PullOptions{}); r.Commit != commit {
		t.Errorf("ref with newline: %s", r.Commit)
	}
	if n := fh.RequestCount(); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// TestCacheLayoutMatchesHuggingFaceHub: what Infergo writes is byte for byte what
// huggingface_hub writes for the same files: ref content, blob names and contents, symlink
// targets.
func TestCacheLayoutMatchesHuggingFaceHub(t *testing.T) {
	fh := hubtest.Start(t)
	commit := addFixture(t, fh, "sentence-transformers/tiny", "tiny-bert-embeddings", nil, hubtest.RepoOptions{})
	ours := t.TempDir()
	pull(t, testHub(t, fh, withCache(ours)), "sentence-transformers/tiny", PullOptions{})
	python := t.TempDir()
	writePythonCache(t, python, "sentence-transformers/tiny", commit, "tiny-bert-embeddings", embFiles)

	got, want := cacheLayout(t, ours), cacheLayout(t, python)
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: ours %q, huggingface_hub %q", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("extra %s: %q", k, v)
			}
		}
	}
	// The extras huggingface_hub 1.x also writes: the tree listing and .no_exist markers.
	repoDir := filepath.Join(ours, "models--sentence-transformers--tiny")
	var tree treeFile
	b, err := os.ReadFile(filepath.Join(repoDir, "trees", commit+".json"))
	if err != nil || json.Unmarshal(b, &tree) != nil || tree.FormatVersion != 1 || len(tree.Files) < len(embFiles) {
		t.Errorf("trees/%s.json: %v %+v", commit, err, tree.FormatVersion)
	}
	if e := tree.Files["onnx/model.onnx_data"]; e.LFSSHA256 == "" || e.Size != 284672 || e.BlobID == "" {
		t.Errorf("tree entry %+v", e)
	}
	if st, err := os.Stat(filepath.Join(repoDir, ".no_exist", commit, "generation_config.json")); err != nil || st.Size() != 0 {
		t.Errorf(".no_exist marker: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ours, ".locks", "models--sentence-transformers--tiny")); err != nil {
		t.Errorf("locks dir: %v", err)
	}
}

// cacheLayout maps each entry under refs/, blobs/ and snapshots/ to what identifies it:
// a symlink's target, a file's sha256.
func cacheLayout(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	repoDir := filepath.Join(root, "models--sentence-transformers--tiny")
	for _, sub := range []string{"refs", "blobs", "snapshots"} {
		filepath.WalkDir(filepath.Join(repoDir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(repoDir, p)
			if d.Type()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				out[rel] = "-> " + target
				return nil
			}
			b, _ := os.ReadFile(p)
			if sub == "refs" {
				out[rel] = string(b)
				return nil
			}
			s := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(s[:])
			return nil
		})
	}
	return out
}
