package ort

import (
	"fmt"
	"os"
	"path/filepath"
)

// LibraryEnv names the environment variable that points at libonnxruntime.so.
const LibraryEnv = "INFERGO_ORT_LIB"

// depsLibrary is where `make deps` installs the ONNX Runtime core library, relative to the
// repository root.
const depsLibrary = ".deps/onnxruntime/libonnxruntime.so.1"

// systemLibraries are handed to dlopen as bare names, so the dynamic linker's search path
// (LD_LIBRARY_PATH, ld.so.cache, /usr/lib) decides.
var systemLibraries = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// FindLibrary returns the ONNX Runtime library to load: $INFERGO_ORT_LIB if set, else the
// first `.deps/` install found beside the executable or the working directory (or any of
// their parents), else the bare system name for dlopen to resolve.
func FindLibrary() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ort: %s=%q: %w", LibraryEnv, p, err)
		}
		return p, nil
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, start := range starts {
		if p, ok := findUpward(start, depsLibrary); ok {
			return p, nil
		}
	}
	return systemLibraries[0], nil
}

// findUpward looks for rel in dir and each of its parents.
func findUpward(dir, rel string) (string, bool) {
	for {
		p := filepath.Join(dir, rel)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
