package builtin

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
)

func TestExtractIsAValidRepo(t *testing.T) {
	base := t.TempDir()
	dir, err := Extract(base)
	if err != nil {
		t.Fatal(err)
	}
	r, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := r.InferTask(nil); err != nil || task != "feature-extraction" {
		t.Errorf("task %q, %v", task, err)
	}
	// The graph and its external weights must be byte-identical to the fixture.
	for _, f := range []string{"onnx/model.onnx", "onnx/model.onnx_data", "tokenizer.json"} {
		got, _ := os.ReadFile(r.Path(f))
		want, _ := os.ReadFile(testutil.Fixture("tiny-bert-embeddings", filepath.FromSlash(f)))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the fixture", f)
		}
	}
	again, err := Extract(base)
	if err != nil || again != dir {
		t.Errorf("second Extract = %q, %v; want %q", again, err, dir)
	}
}

func TestExtractConcurrent(t *testing.T) {
	base := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range dirs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); dirs[i], errs[i] = Extract(base) }(i)
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("extract %d: %q, %v", i, dirs[i], errs[i])
		}
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 {
		t.Errorf("base holds %d entries, want 1 (temporary folders left behind?)", len(entries))
	}
}
