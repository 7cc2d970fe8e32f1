// Package benchmodel materialises the benchmark model: the MiniLM-L6-shaped BERT graph of
// testdata/fixtures/bench-minilm-l6-graph (hidden 384, 6 layers, 12 heads, vocabulary 30,522)
// whose 90 MB of weights are not shipped, paired with the real bert-base-uncased tokenizer.
// Weights are normally distributed (std 0.02), like ../shared/tools/fill-weights.py writes
// them; values differ from that script's but timing does not depend on them.
package benchmodel

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Sources names the fixture files the model is assembled from (repository-relative).
var Sources = struct{ Graph, Config, Weights, Tokenizer string }{
	Graph:     "testdata/fixtures/bench-minilm-l6-graph/onnx/model.onnx",
	Config:    "testdata/fixtures/bench-minilm-l6-graph/config.json",
	Weights:   "testdata/fixtures/bench-minilm-l6-graph/weights.json",
	Tokenizer: "testdata/fixtures/real-tokenizers/bert-base-uncased/tokenizer.json",
}

// tokenizerConfig is what a bert-base-uncased repo carries; it sets the 512-token limit.
const tokenizerConfig = `{"do_lower_case": true, "model_max_length": 512, "pad_token": "[PAD]", "tokenizer_class": "BertTokenizer"}
`

// Ensure builds the model repo in dir (from the repository at root) unless it is already
// complete, and returns dir. The weights file is written to a temporary name and renamed.
func Ensure(root, dir string) (string, error) {
	var meta struct {
		File  string `json:"weights_file"`
		Bytes int64  `json:"weights_bytes"`
	}
	b, err := os.ReadFile(filepath.Join(root, Sources.Weights))
	if err != nil {
		return "", fmt.Errorf("benchmodel: %w", err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("benchmodel: parse weights.json: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		return "", fmt.Errorf("benchmodel: %w", err)
	}
	copies := map[string]string{
		Sources.Graph:     "onnx/model.onnx",
		Sources.Config:    "config.json",
		Sources.Tokenizer: "tokenizer.json",
	}
	for src, dst := range copies {
		if err := copyFile(filepath.Join(root, src), filepath.Join(dir, dst)); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tokenizerConfig), 0o644); err != nil {
		return "", fmt.Errorf("benchmodel: %w", err)
	}
	weights := filepath.Join(dir, filepath.FromSlash(meta.File))
	if st, err := os.Stat(weights); err == nil && st.Size() == meta.Bytes {
		return dir, nil
	}
	if err := writeWeights(weights, meta.Bytes/4); err != nil {
		return "", err
	}
	return dir, nil
}

func writeWeights(path string, n int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("benchmodel: %w", err)
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(7, 7))
	// A repeating block of 64 Ki values keeps this to about a second, as the Python tool does.
	block := make([]byte, 4<<16)
	for i := 0; i < len(block)/4; i++ {
		binary.LittleEndian.PutUint32(block[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
	}
	for left := n * 4; left > 0; {
		k := min(left, int64(len(block)))
		if _, err := w.Write(block[:k]); err != nil {
			f.Close()
			return fmt.Errorf("benchmodel: write weights: %w", err)
		}
		left -= k
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("benchmodel: write weights: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("benchmodel: write weights: %w", err)
	}
	return os.Rename(tmp, path)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("benchmodel: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return fmt.Errorf("benchmodel: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("benchmodel: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("benchmodel: %w", err)
	}
	return os.Rename(dst+".tmp", dst)
}
