package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fakeEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFindProvider(t *testing.T) {
	root := t.TempDir()
	core := touch(t, filepath.Join(root, "ort", "libonnxruntime.so.1"))
	shared := touch(t, filepath.Join(root, "ort", SharedFile))
	deps := touch(t, filepath.Join(root, "repo", depsDir, ProviderFile))
	sub := filepath.Join(root, "repo", "cmd", "infergo")
	os.MkdirAll(sub, 0o755)

	// .deps/cuda found from a sub-folder of the repository.
	libs, err := Finder{Getenv: fakeEnv(nil), Starts: []string{sub}}.Find(core)
	if err != nil || libs.Provider != deps || libs.Shared != shared {
		t.Fatalf("deps: %+v %v", libs, err)
	}
	// The environment variable wins, as a file or as its folder.
	other := touch(t, filepath.Join(root, "elsewhere", ProviderFile))
	for _, v := range []string{other, filepath.Dir(other)} {
		libs, err = Finder{Getenv: fakeEnv(map[string]string{ProviderEnv: v}), Starts: []string{sub}}.Find(core)
		if err != nil || libs.Provider != other {
			t.Errorf("%s=%s: %+v %v", ProviderEnv, v, libs, err)
		}
	}
	// Next to the core library as a last resort.
	beside := touch(t, filepath.Join(root, "ort", ProviderFile))
	libs, err = Finder{Getenv: fakeEnv(nil), Starts: []string{t.TempDir()}}.Find(core)
	if err != nil || libs.Provider != beside {
		t.Errorf("beside core: %+v %v", libs, err)
	}
}

func TestFindProviderMissing(t *testing.T) {
	root := t.TempDir()
	core := touch(t, filepath.Join(root, "ort", "libonnxruntime.so.1"))
	var m *MissingError

	_, err := Finder{Getenv: fakeEnv(nil), Starts: []string{filepath.Join(root, "x")}}.Find(core)
	if !errors.As(err, &m) || len(m.Files) != 2 {
		t.Fatalf("want both files missing, got %v", err)
	}
	for _, want := range []string{ProviderFile, SharedFile, "make deps-gpu", filepath.Join(root, "ort")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// A bad INFERGO_CUDA_PROVIDER is reported as such, not silently skipped.
	_, err = Finder{Getenv: fakeEnv(map[string]string{ProviderEnv: filepath.Join(root, "nope.so")})}.Find(core)
	if err == nil || !strings.Contains(err.Error(), ProviderEnv) || !strings.Contains(err.Error(), "nope.so") {
		t.Errorf("bad env: %v", err)
	}
	_, err = Finder{Getenv: fakeEnv(map[string]string{ProviderEnv: root})}.Find(core)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, ProviderFile)) {
		t.Errorf("env folder without the provider: %v", err)
	}

	// The shared helper must sit beside the core library, even when the provider is found.
	touch(t, filepath.Join(root, "ort", ProviderFile))
	_, err = Finder{Getenv: fakeEnv(nil), Starts: []string{root}}.Find(core)
	if err == nil || !strings.Contains(err.Error(), SharedFile+" must sit beside") {
		t.Errorf("shared missing: %v", err)
	}
	// A bare core name (system library) leaves its folder unknown.
	_, err = Finder{Getenv: fakeEnv(nil), Starts: []string{root}}.Find("libonnxruntime.so.1")
	if err == nil || !strings.Contains(err.Error(), "folder is unknown") {
		t.Errorf("bare core: %v", err)
	}
}

func TestCheckRuntime(t *testing.T) {
	present := map[string]bool{"libcudart.so.13": true, "libcublas.so.13": true, "libcurand.so.10": true}
	f := Finder{Load: func(name string) error {
		if present[name] {
			return nil
		}
		return errors.New(name + ": cannot open shared object file")
	}}
	err := f.CheckRuntime()
	var m *MissingError
	if !errors.As(err, &m) || len(m.Libraries) != 3 {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"libcuda.so.1 (NVIDIA driver)", "libcublasLt.so.13", "libcudnn.so.9 (cuDNN 9)", "LD_LIBRARY_PATH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "libcudart") {
		t.Errorf("present library reported: %v", err)
	}
	if err := (Finder{Load: func(string) error { return nil }}).CheckRuntime(); err != nil {
		t.Errorf("all present: %v", err)
	}
}

// TestDlopenCheck uses the real dynamic linker: libc loads, a missing name and a file that
// is not a library fail with the linker's reason.
func TestDlopenCheck(t *testing.T) {
	if err := dlopenCheck("libc.so.6"); err != nil {
		t.Errorf("libc: %v", err)
	}
	if err := dlopenCheck("libinfergo-does-not-exist.so.1"); err == nil || !strings.Contains(err.Error(), "cannot open shared object file") {
		t.Errorf("missing: %v", err)
	}
	fake := touch(t, filepath.Join(t.TempDir(), "libfake.so"))
	if err := dlopenCheck(fake); err == nil || !strings.Contains(err.Error(), "libfake.so") {
		t.Errorf("fake: %v", err)
	}
}
