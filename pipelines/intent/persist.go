package intent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// On disk a model is a directory holding model.json (Meta, indented JSON) and weights.bin:
//
//	magic "IGINTNT1" | uint32 tensor count | per tensor: uint32 length, length × float32
//
// little-endian, tensors in the order mean, invStd, then W and b of each layer. Meta fixes the
// shapes (Dimensions, Hidden, len(Classes)) and the file's SHA-256. FormatVersion changes when
// the layout does; Load refuses versions it does not know.

// FormatVersion is the on-disk format written by Save.
const FormatVersion = 1

const (
	metaFile    = "model.json"
	weightsFile = "weights.bin"
	magic       = "IGINTNT1"
	// TempPrefix starts the names of directories Save is still writing; anything with it is
	// an interrupted save and may be removed.
	TempPrefix = ".tmp-"
)

// Save writes the model to parent/<Meta.ID> atomically: everything goes to a temporary
// directory beside it, synced, then renamed into place, so a crash or a cancelled ctx leaves
// either the whole model or nothing (at worst a TempPrefix directory). It returns the model's
// directory.
func (m *Model) Save(ctx context.Context, parent string) (string, error) {
	id := m.Meta.ID
	if id == "" || !filepath.IsLocal(id) || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("intent: bad model id %q", id)
	}
	weights := m.encodeWeights()
	sum := sha256.Sum256(weights)
	meta := m.Meta
	meta.FormatVersion = FormatVersion
	meta.WeightsSHA256 = hex.EncodeToString(sum[:])
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return "", fmt.Errorf("intent: encode metadata: %w", err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("intent: save model: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, TempPrefix+id+"-")
	if err != nil {
		return "", fmt.Errorf("intent: save model: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeSynced(filepath.Join(tmp, weightsFile), weights); err != nil {
		return "", err
	}
	if err := writeSynced(filepath.Join(tmp, metaFile), append(metaJSON, '\n')); err != nil {
		return "", err
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	// Last chance to give up: after the rename the model exists.
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := filepath.Join(parent, id)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("intent: save model: %w", err)
	}
	done = true
	m.Meta = meta
	if err := syncDir(parent); err != nil {
		return dir, err
	}
	return dir, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("intent: save model: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("intent: save model: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("intent: save model: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("intent: save model: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("intent: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("intent: sync %s: %w", dir, err)
	}
	return nil
}

func (m *Model) tensors() [][]float32 {
	return append([][]float32{m.clf.mean, m.clf.invStd}, m.clf.net.params()...)
}

func (m *Model) encodeWeights() []byte {
	ts := m.tensors()
	n := len(magic) + 4
	for _, t := range ts {
		n += 4 + 4*len(t)
	}
	b := make([]byte, 0, n)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ts)))
	for _, t := range ts {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
		for _, v := range t {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

// ErrBadModel is wrapped by Load errors about corrupt or incompatible model files.
var ErrBadModel = errors.New("intent: bad model files")

func badModel(dir, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadModel, dir, fmt.Sprintf(format, args...))
}

// Load reads a model saved by Save. Missing directories give an error matching
// os.ErrNotExist; corrupt or incompatible files one matching ErrBadModel.
func Load(dir string) (*Model, error) {
	metaJSON, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("intent: load model: %w", err)
	}
	var meta Meta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return nil, badModel(dir, "model.json: %v", err)
	}
	if meta.FormatVersion != FormatVersion {
		return nil, badModel(dir, "format version %d, this build reads %d", meta.FormatVersion, FormatVersion)
	}
	weights, err := os.ReadFile(filepath.Join(dir, weightsFile))
	if err != nil {
		return nil, fmt.Errorf("intent: load model: %w", err)
	}
	if sum := sha256.Sum256(weights); hex.EncodeToString(sum[:]) != meta.WeightsSHA256 {
		return nil, badModel(dir, "weights.bin checksum mismatch")
	}
	k, d := len(meta.Classes), meta.Dimensions
	sizes := []int{d, k}
	switch meta.Head {
	case HeadLogReg:
	case HeadMLP:
		sizes = []int{d, meta.Hidden, k}
	default:
		return nil, badModel(dir, "unknown head %q", meta.Head)
	}
	if k == 0 || d <= 0 || (meta.Head == HeadMLP && meta.Hidden <= 0) {
		return nil, badModel(dir, "empty shapes (classes %d, dimensions %d)", k, d)
	}
	clf := &classifier{head: meta.Head, mean: make([]float32, d), invStd: make([]float32, d), net: newMLP(sizes, nil)}
	m := &Model{Meta: meta, clf: clf}
	if err := decodeWeights(weights, m.tensors()); err != nil {
		return nil, badModel(dir, "weights.bin: %v", err)
	}
	m.gaz, _ = compileGazetteer(meta.Gazetteer)
	return m, nil
}

// decodeWeights fills dst (already shaped) from the weights.bin bytes.
func decodeWeights(b []byte, dst [][]float32) error {
	if !bytes.HasPrefix(b, []byte(magic)) {
		return errors.New("bad magic")
	}
	b = b[len(magic):]
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != uint32(len(dst)) {
		return fmt.Errorf("tensor count differs from the metadata (want %d)", len(dst))
	}
	b = b[4:]
	for i, t := range dst {
		if len(b) < 4 || binary.LittleEndian.Uint32(b) != uint32(len(t)) {
			return fmt.Errorf("tensor %d: length differs from the metadata (want %d)", i, len(t))
		}
		b = b[4:]
		if len(b) < 4*len(t) {
			return fmt.Errorf("tensor %d: truncated", i)
		}
		for j := range t {
			t[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		b = b[4*len(t):]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(b))
	}
	return nil
}
