package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGraphBytesCountsExternalData(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.onnx", 100)
	write("model.onnx.data", 1000)
	write("model.onnx_data", 10)
	write("other.onnx", 5000)          // another graph: not this one's weights
	write("model_quantized.onnx", 700) // a variant, not external data of model.onnx
	if got := graphBytes(filepath.Join(dir, "model.onnx")); got != 1110 {
		t.Errorf("graphBytes = %d, want 1110 (graph + its two data files)", got)
	}
	if got := graphBytes(filepath.Join(dir, "missing.onnx")); got != 0 {
		t.Errorf("graphBytes(missing) = %d, want 0", got)
	}
}

func TestSessionCount(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.onnx")
	if err := os.WriteFile(small, make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memTotal()
	if mem <= 0 {
		t.Skip("no /proc/meminfo")
	}
	// A sparse file as large as the memory: a quarter of the memory holds no extra copy.
	huge := filepath.Join(dir, "huge.onnx")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mem); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// One eighth of the memory: two extra copies fit in the quarter.
	eighth := filepath.Join(dir, "eighth.onnx")
	if f, err = os.Create(eighth); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mem / 8); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, tc := range []struct {
		name               string
		requested, workers int
		path               string
		want               int
	}{
		{"explicit count kept", 3, 8, huge, 3},
		{"zero means one", 0, 8, small, 1},
		{"per worker, small graph", SessionsPerWorker, 8, small, 8},
		{"per worker, one worker", SessionsPerWorker, 1, small, 1},
		{"per worker, graph as large as memory", SessionsPerWorker, 8, huge, 1},
		{"per worker, capped by memory", SessionsPerWorker, 8, eighth, 3},
		{"per worker, unknown size", SessionsPerWorker, 4, filepath.Join(dir, "missing.onnx"), 4},
	} {
		if got := SessionCount(tc.requested, tc.workers, tc.path); got != tc.want {
			t.Errorf("%s: SessionCount(%d, %d) = %d, want %d", tc.name, tc.requested, tc.workers, got, tc.want)
		}
	}
}
