package onnxgraph

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rewriteVersion changes whenever a rewrite's output changes, so files written by an older
// Infergo are not reused.
const rewriteVersion = "1"

// Spec selects the rewrites Prepare applies, in this order: FuseAttention, Float16, then Pool
// (so pooling runs on the float32 output the conversion restores).
type Spec struct {
	// FuseAttention replaces self-attention blocks with com.microsoft.MultiHeadAttention
	// (bidirectional encoders only; graphs in another form are left as they are). First.
	FuseAttention bool
	// AttentionMask is the form of the fused attention's mask (MaskPadding by default).
	AttentionMask AttentionMask
	Float16       bool
	Pool          *PoolSpec
}

// Empty reports whether s asks for nothing.
func (s Spec) Empty() bool { return !s.FuseAttention && !s.Float16 && s.Pool == nil }

func (s Spec) tag() string {
	var parts []string
	if s.FuseAttention {
		parts = append(parts, s.AttentionMask.tag())
	}
	if s.Float16 {
		parts = append(parts, "fp16")
	}
	if s.Pool != nil {
		p := "pool-" + strings.ReplaceAll(string(s.Pool.Mode), "_", "")
		if s.Pool.Normalize {
			p += "-norm"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "-")
}

// Apply runs the rewrites on m.
func (s Spec) Apply(m *Model) error {
	if s.FuseAttention {
		// A graph in another form keeps its attention as it is.
		if _, err := m.FuseAttentionMask(s.AttentionMask); err != nil {
			return err
		}
	}
	if s.Float16 {
		if err := m.ConvertFloat16(); err != nil {
			return err
		}
	}
	if s.Pool != nil {
		if err := m.AppendPooling(*s.Pool); err != nil {
			return err
		}
	}
	return nil
}

// Prepare returns the path of the graph at path rewritten as s says, writing it next to path
// (as <stem>.infergo-<tag>-<hash>.onnx) unless an identical file is already there; s.Empty()
// returns path itself. The name hashes the source graph, the spec and, for fp16 (which inlines
// the weights), the external data files' sizes and times, so a changed model is rewritten.
// The folder must be writable: the external data the graph references must stay beside it.
func Prepare(path string, s Spec) (string, error) {
	if s.Empty() {
		return path, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("onnxgraph: %w", err)
	}
	dir := filepath.Dir(path)
	m, err := Parse(src, dir)
	if err != nil {
		return "", fmt.Errorf("%w (%s)", err, path)
	}
	h := sha256.New()
	fmt.Fprintf(h, "infergo-onnxgraph %s %s %+v\n", rewriteVersion, s.tag(), s.Pool)
	h.Write(src)
	if s.Float16 {
		for _, loc := range externalLocations(m) {
			if st, err := os.Stat(filepath.Join(dir, loc)); err == nil {
				fmt.Fprintf(h, "%s %d %d\n", loc, st.Size(), st.ModTime().UnixNano())
			}
		}
	}
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	out := filepath.Join(dir, fmt.Sprintf("%s.infergo-%s-%s.onnx", stem, s.tag(), hex.EncodeToString(h.Sum(nil))[:12]))
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return out, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("onnxgraph: %w", err)
	}
	if err := s.Apply(m); err != nil {
		return "", fmt.Errorf("%w (%s)", err, path)
	}
	b, err := m.Marshal()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".infergo-rewrite-*")
	if err != nil {
		return "", fmt.Errorf("onnxgraph: write the rewritten graph beside %s (its weights must stay next to it): %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("onnxgraph: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("onnxgraph: write %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("onnxgraph: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("onnxgraph: %w", err)
	}
	return out, nil
}

// externalLocations lists the distinct external data files the model's initializers use.
func externalLocations(m *Model) []string {
	seen := map[string]bool{}
	var locs []string
	for _, t := range m.Graph().GetInitializer() {
		for _, e := range t.GetExternalData() {
			if e.GetKey() == "location" && !seen[e.GetValue()] {
				seen[e.GetValue()] = true
				locs = append(locs, e.GetValue())
			}
		}
	}
	return locs
}
