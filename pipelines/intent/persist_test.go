package intent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, head := range []intent.Head{intent.HeadLogReg, intent.HeadMLP} {
		t.Run(string(head), func(t *testing.T) {
			m, emb := trainSpec(t, intent.TrainOptions{Head: head, Hidden: 16})
			m.Meta.ID = "clf-1"
			m.Meta.Embedder = intent.EmbedderInfo{ModelID: "hash", Dimensions: 256}
			parent := t.TempDir()
			dir, err := m.Save(context.Background(), parent)
			if err != nil {
				t.Fatal(err)
			}
			if dir != filepath.Join(parent, "clf-1") {
				t.Errorf("saved to %s", dir)
			}
			got, err := intent.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Meta, m.Meta) {
				t.Errorf("meta differs:\n%+v\n%+v", got.Meta, m.Meta)
			}
			texts := []string{intenttest.SpecUtterance, "bye bye", "I am sad"}
			a, _ := m.Classify(context.Background(), emb, texts, intent.EmbedConfig{})
			b, err := got.Classify(context.Background(), emb, texts, intent.EmbedConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("predictions differ after reload:\n%+v\n%+v", a, b)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("parent holds %d entries, want only the model", len(entries))
			}
		})
	}
}

func TestSaveCancelledLeavesNothing(t *testing.T) {
	m, _ := trainSpec(t, intent.TrainOptions{})
	m.Meta.ID = "clf-2"
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Save(ctx, parent); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("cancelled save left %v", entries)
	}
	for _, id := range []string{"", "../x", "/abs", ".hidden", "a/b"} {
		m.Meta.ID = id
		if _, err := m.Save(context.Background(), parent); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}

func TestLoadCorrupt(t *testing.T) {
	m, _ := trainSpec(t, intent.TrainOptions{})
	m.Meta.ID = "clf-3"
	dir, err := m.Save(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := intent.Load(filepath.Join(filepath.Dir(dir), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing model: %v", err)
	}
	w := filepath.Join(dir, "weights.bin")
	b, _ := os.ReadFile(w)
	b[len(b)-1] ^= 1
	os.WriteFile(w, b, 0o644)
	if _, err := intent.Load(dir); !errors.Is(err, intent.ErrBadModel) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("flipped bit: %v", err)
	}
	meta := filepath.Join(dir, "model.json")
	j, _ := os.ReadFile(meta)
	os.WriteFile(meta, []byte(strings.Replace(string(j), `"format_version": 1`, `"format_version": 99`, 1)), 0o644)
	if _, err := intent.Load(dir); !errors.Is(err, intent.ErrBadModel) || !strings.Contains(err.Error(), "format version 99") {
		t.Errorf("future version: %v", err)
	}
	os.WriteFile(meta, []byte("{"), 0o644)
	if _, err := intent.Load(dir); !errors.Is(err, intent.ErrBadModel) {
		t.Errorf("broken json: %v", err)
	}
}
