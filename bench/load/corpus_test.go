package load

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.txt")
	if err := os.WriteFile(p, []byte("  first query \n\n\t\nsecond\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLines(p)
	if err != nil || !slices.Equal(got, []string{"first query", "second"}) {
		t.Fatalf("got %q, %v", got, err)
	}
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("\n \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLines(empty); err == nil {
		t.Error("a corpus without lines was accepted")
	}
	if _, err := ReadLines(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("a missing corpus was accepted")
	}
}
