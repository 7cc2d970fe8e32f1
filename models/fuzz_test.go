package models

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// within reports whether p is root or inside it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 100-284671/284672", "bytes 5-5/*", "bytes */100", "bytes 9-1/10", "bytes -1-2/3", "bytes 0-9/5", "items 0-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, err := parseContentRange(s)
		if err != nil {
			return
		}
		if first < 0 || last < first || (total != -1 && (total <= last || total < 0)) {
			t.Fatalf("%q → %d-%d/%d", s, first, last, total)
		}
	})
}

func FuzzValidateRepoID(f *testing.F) {
	for _, s := range []string{"org/name", "gpt2", "../x", "a/../../b", "a--b", "/abs", "a/b\x00", "..", "a/b/c"} {
		f.Add(s)
	}
	root := "/cache/root"
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateRepoID(id) != nil {
			return
		}
		dir := NewCache(root).RepoDir(id)
		if filepath.Dir(dir) != root || strings.ContainsRune(id, 0) {
			t.Fatalf("repo id %q maps to %q", id, dir)
		}
		if typ, back, ok := parseRepoFolder(filepath.Base(dir)); !ok || typ != "model" || back != id {
			t.Fatalf("folder of %q parses back to %q %q %v", id, typ, back, ok)
		}
	})
}

func FuzzValidateRevision(f *testing.F) {
	for _, s := range []string{"main", "refs/pr/1", "../../etc", "a/../b", "/x", "v1.0", "x\x00", "."} {
		f.Add(s)
	}
	refs := "/cache/models--a--b/refs"
	f.Fuzz(func(t *testing.T, rev string) {
		if ValidateRevision(rev) != nil {
			return
		}
		p := filepath.Join(refs, filepath.FromSlash(rev))
		if !within(refs, p) || p == refs || strings.ContainsRune(rev, 0) {
			t.Fatalf("revision %q maps to %q", rev, p)
		}
	})
}

func FuzzValidateRepoPath(f *testing.F) {
	for _, s := range []string{"config.json", "onnx/model.onnx", "../x", "/etc/passwd", "a/../../b", "a\\b", "a\x00", "./a"} {
		f.Add(s)
	}
	snap := "/cache/models--a--b/snapshots/0123456789abcdef0123456789abcdef01234567"
	f.Fuzz(func(t *testing.T, p string) {
		if ValidateRepoPath(p) != nil {
			return
		}
		full := filepath.Join(snap, filepath.FromSlash(p))
		if !within(snap, full) || full == snap || strings.ContainsAny(p, "\x00\\") {
			t.Fatalf("path %q maps to %q", p, full)
		}
		// External-data locations resolved next to a graph must stay inside too.
		if paths, err := externalDataPaths("onnx/model.onnx", []string{p}); err == nil {
			for _, q := range paths {
				if !within(snap, filepath.Join(snap, filepath.FromSlash(q))) {
					t.Fatalf("external data %q → %q", p, q)
				}
			}
		}
	})
}

func FuzzExternalLocations(f *testing.F) {
	f.Add(cat(pbBytes(7, pbBytes(5, externalTensor("w", "model.onnx_data", true)))))
	f.Add(deepGraphs(3))
	f.Add([]byte{0x3a, 0x05, 0x2a, 0x03, 0x6a, 0x01, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		locs, err := externalLocations(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, l := range locs {
			if len(l) > maxExternalDataString || l == "" {
				t.Fatalf("location %q", l)
			}
			if paths, err := externalDataPaths("onnx/model.onnx", []string{l}); err == nil {
				for _, p := range paths {
					if ValidateRepoPath(p) != nil {
						t.Fatalf("unsafe %q", p)
					}
				}
			}
		}
	})
}

func FuzzNextLink(f *testing.F) {
	for _, s := range []string{`<https://hf.co/api/models/x/tree/main?cursor=abc>; rel="next"`, `<a>; rel=prev, <b>; rel="next"`, `<>; rel=next`, `garbage`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n := nextLink(h)
		if n != "" && !strings.Contains(h, n) {
			t.Fatalf("%q → %q", h, n)
		}
		if r := resolveLink("https://hub.example/api/models/x/tree/main", n); r != "" && !strings.HasPrefix(r, "http") {
			t.Fatalf("resolved to %q", r)
		}
	})
}
