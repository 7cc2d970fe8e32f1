// Package builtin embeds a tiny sentence-transformers model so `infergo serve` works with no
// network and no model given.
package builtin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// ID names the built-in model in logs and /info.
const ID = "infergo/tiny-embeddings"

//go:embed all:tiny-embeddings
var files embed.FS

const root = "tiny-embeddings"

// FS returns the model's files.
func FS() fs.FS {
	sub, err := fs.Sub(files, root)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Extract writes the model under base (one folder per content hash, so a rebuilt binary with
// a different model never reuses stale files) and returns its directory. ONNX Runtime needs
// real files: the graph refers to its weights by file name. Existing complete copies are
// reused; a new copy is written to a temporary folder and renamed into place.
func Extract(base string) (string, error) {
	sum, err := digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "builtin-"+sum[:16])
	if st, err := os.Stat(filepath.Join(dir, ".complete")); err == nil && st.Mode().IsRegular() {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("builtin: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".builtin-*")
	if err != nil {
		return "", fmt.Errorf("builtin: %w", err)
	}
	defer os.RemoveAll(tmp)
	err = fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(tmp, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(FS(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, ".complete"), []byte(sum), 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("builtin: extract: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have won the race; its copy is as good as ours.
		if _, serr := os.Stat(filepath.Join(dir, ".complete")); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("builtin: extract: %w", err)
	}
	return dir, nil
}

// DefaultBase is where Extract puts the model when the caller has no preference: the user's
// cache directory, else the system temporary directory.
func DefaultBase() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "infergo")
	}
	return filepath.Join(os.TempDir(), "infergo")
}

func digest() (string, error) {
	var names []string
	err := fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(FS(), n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
