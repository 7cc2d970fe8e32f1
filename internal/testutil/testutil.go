// Package testutil holds helpers shared by tests: fixture paths, golden JSON loading and
// float comparison with tolerance.
package testutil

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
)

// RootEnv overrides Root for test binaries run away from the source tree (the GPU suite runs
// as a compiled binary on a machine whose checkout sits elsewhere).
const RootEnv = "INFERGO_REPO_ROOT"

// Root returns the repository root (the directory holding go.mod).
func Root() string {
	if r := os.Getenv(RootEnv); r != "" {
		return r
	}
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Fixture returns the absolute path of testdata/fixtures/<elem...>.
func Fixture(elem ...string) string {
	return filepath.Join(append([]string{Root(), "testdata", "fixtures"}, elem...)...)
}

// LoadJSON decodes the JSON file at path into v, failing the test on error.
func LoadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// MaxAbsDiff returns the largest |a[i]-b[i]|, or +Inf when the lengths differ.
func MaxAbsDiff[A, B ~float32 | ~float64](a []A, b []B) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > m || math.IsNaN(d) {
			m = d
		}
	}
	return m
}

// AssertClose fails the test when got and want differ by more than tol anywhere.
func AssertClose[A, B ~float32 | ~float64](t testing.TB, what string, got []A, want []B, tol float64) {
	t.Helper()
	if d := MaxAbsDiff(got, want); d > tol {
		t.Errorf("%s: max abs diff %g > %g (len got %d, want %d)", what, d, tol, len(got), len(want))
	}
}

// CopyFixture copies the named files (slash paths) of a fixture repo into a new temporary
// directory and returns it, for tests that need a variant of a fixture.
func CopyFixture(t testing.TB, fixture string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(Fixture(fixture, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("copy fixture: %v", err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// PlainEncoderFiles are the files of tiny-bert-embeddings without its sentence-transformers
// modules: a plain transformers encoder repo.
var PlainEncoderFiles = []string{"config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx", "onnx/model.onnx_data"}
