// Package models finds and reads model repositories: a directory laid out like a Hugging Face
// Hub repo (config.json, tokenizer.json, onnx/*.onnx, sentence-transformers files) and, for
// Hub ids, the local Hugging Face cache that the Hub client fills.
//
// The Hub client (Hub, Resolve) downloads from any Hub-compatible endpoint (HF_ENDPOINT)
// only the files a task needs, into the cache layout huggingface_hub uses (Cache), so the
// cache is shared with Python tools, TEI and transformers.js. The cache root follows
// huggingface_hub: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub >
// ~/.cache/huggingface/hub (DefaultCacheDir); the container image sets HF_HUB_CACHE=/data and
// the CLI's --cache-dir overrides all of them. models/hubtest is a fake Hub for tests.
package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Repo is a model repository on disk. Its files are read-only to Infergo.
type Repo struct {
	// Dir is the absolute directory holding the repo's files.
	Dir string
	// ID is the Hub id (org/name) or, for a local directory, the directory as given.
	ID string
	// Commit is the resolved commit hash, when known.
	Commit string
	// Graphs are the ONNX graphs chosen for the task when the repo came from the Hub (Pull),
	// primary first: the encoder for seq2seq models, the no-past decoder before the
	// with-past one. Empty for local directories.
	Graphs []string
	// Files are the repo files that Pull made available (nil for local directories).
	Files []string
}

// ErrNotLocal reports a model reference that is not a local directory.
var ErrNotLocal = errors.New("models: not a local directory")

// OpenDir opens a local directory laid out like a Hub repo. It must hold config.json or an
// ONNX graph.
func OpenDir(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotLocal, dir)
		}
		return nil, fmt.Errorf("models: %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("models: %s is not a directory", dir)
	}
	r := &Repo{Dir: abs, ID: dir}
	if !r.Has("config.json") {
		if _, err := r.ONNXFile(""); err != nil {
			return nil, fmt.Errorf("models: %s has neither config.json nor an ONNX graph", dir)
		}
	}
	return r, nil
}

// Path returns the absolute path of a file in the repo (slash-separated name).
func (r *Repo) Path(name string) string { return filepath.Join(r.Dir, filepath.FromSlash(name)) }

// Has reports whether the repo holds the named regular file.
func (r *Repo) Has(name string) bool {
	st, err := os.Stat(r.Path(name))
	return err == nil && st.Mode().IsRegular()
}

// ReadJSON decodes a JSON file of the repo into v.
func (r *Repo) ReadJSON(name string, v any) error {
	b, err := os.ReadFile(r.Path(name))
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("models: parse %s: %w", name, err)
	}
	return nil
}

// onnxCandidates is the order in which a graph is chosen when none is named: the
// transformers.js / optimum layouts (onnx/ subfolder) first, then an export at the root.
var onnxCandidates = []string{"onnx/model.onnx", "model.onnx", "onnx/encoder_model.onnx", "encoder_model.onnx"}

// ONNXFile returns the repo-relative name of the graph to load. name, if set, picks it
// explicitly ("onnx/model_quantized.onnx"), or by variant suffix ("quantized" →
// onnx/model_quantized.onnx or model_quantized.onnx).
//
// A repo pulled from the Hub answers with its primary chosen graph (Graphs[0]) when name
// is empty; variant names also accept transformers.js dtypes ("q8" → _quantized).
func (r *Repo) ONNXFile(name string) (string, error) {
	if name == "" && len(r.Graphs) > 0 && r.Has(r.Graphs[0]) {
		return r.Graphs[0], nil
	}
	if name != "" {
		if r.Has(name) {
			return name, nil
		}
		for _, suffix := range variantSuffixes(name) {
			for _, base := range []string{"onnx/model%s.onnx", "model%s.onnx"} {
				if p := fmt.Sprintf(base, suffix); r.Has(p) {
					return p, nil
				}
			}
		}
		return "", fmt.Errorf("models: %s has no ONNX file %q (available: %s)", r.ID, name, strings.Join(r.onnxFiles(), ", "))
	}
	for _, c := range onnxCandidates {
		if r.Has(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("models: %s has no ONNX graph (looked for %s)", r.ID, strings.Join(onnxCandidates, ", "))
}

func (r *Repo) onnxFiles() []string {
	var out []string
	for _, dir := range []string{"", "onnx"} {
		entries, _ := os.ReadDir(filepath.Join(r.Dir, dir))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".onnx") {
				out = append(out, pathJoin(dir, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out
}

func pathJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
