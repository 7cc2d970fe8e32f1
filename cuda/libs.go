package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names of the CUDA execution provider (npm com.github.asus4.onnxruntime.linux-x64-gpu,
// ORT 1.29 built for CUDA 13) that `make deps-gpu` installs into .deps/cuda/.
const (
	ProviderFile = "libonnxruntime_providers_cuda.so"
	SharedFile   = "libonnxruntime_providers_shared.so"
	// ProviderEnv names the variable that points at the provider library (or its folder).
	ProviderEnv = "INFERGO_CUDA_PROVIDER"
	depsDir     = ".deps/cuda"
)

// RuntimeLibrary is a shared library the CUDA provider needs at run time.
type RuntimeLibrary struct {
	Soname string
	What   string
}

// RuntimeLibraries are what the provider links against or opens (cuDNN) besides libc: the
// driver and the CUDA 13 runtime libraries. The nvidia/cuda:13.0.x-cudnn-runtime images have
// them all; elsewhere they come from the CUDA toolkit, cuDNN and the NVIDIA driver.
var RuntimeLibraries = []RuntimeLibrary{
	{"libcuda.so.1", "NVIDIA driver"},
	{"libcudart.so.13", "CUDA 13 runtime"},
	{"libcublas.so.13", "cuBLAS (CUDA 13)"},
	{"libcublasLt.so.13", "cuBLASLt (CUDA 13)"},
	{"libcurand.so.10", "cuRAND (CUDA 13)"},
	{"libcudnn.so.9", "cuDNN 9"},
}

// Libraries locates the provider files.
type Libraries struct {
	// Provider is libonnxruntime_providers_cuda.so.
	Provider string
	// Shared is libonnxruntime_providers_shared.so; ONNX Runtime loads it from the core
	// library's folder, so it must sit there.
	Shared string
}

// MissingError lists what a CUDA set-up lacks. Its message names every missing piece.
type MissingError struct {
	// Files are provider files that were not found (with where they were looked for).
	Files []string
	// Libraries are runtime libraries the dynamic linker could not load, with its reason.
	Libraries []string
}

func (e *MissingError) Error() string {
	var parts []string
	if len(e.Files) > 0 {
		parts = append(parts, "CUDA provider files missing: "+strings.Join(e.Files, "; ")+" (run `make deps-gpu` or set "+ProviderEnv+")")
	}
	if len(e.Libraries) > 0 {
		parts = append(parts, "CUDA libraries not loadable: "+strings.Join(e.Libraries, "; ")+
			" (install the NVIDIA driver, CUDA 13 and cuDNN 9, or add their folders to LD_LIBRARY_PATH, e.g. /usr/local/cuda-13.0/targets/x86_64-linux/lib)")
	}
	return "cuda: " + strings.Join(parts, "; ")
}

// Finder locates the provider and checks the system. Its zero value searches the real
// system; tests replace the hooks.
type Finder struct {
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// Starts are the folders searched, with their parents, for .deps/cuda (default: the
	// executable's folder and the working directory).
	Starts []string
	// Load checks that the dynamic linker can load a library (dlopen when nil).
	Load func(name string) error
}

func (f Finder) getenv(k string) string {
	if f.Getenv != nil {
		return f.Getenv(k)
	}
	return os.Getenv(k)
}

func (f Finder) load(name string) error {
	if f.Load != nil {
		return f.Load(name)
	}
	return dlopenCheck(name)
}

func (f Finder) starts() []string {
	if f.Starts != nil {
		return f.Starts
	}
	var s []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		s = append(s, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		s = append(s, wd)
	}
	return s
}

// Find returns the provider files for the core library at core (an absolute path; the
// folder the shared helper must sit in). Order: $INFERGO_CUDA_PROVIDER (the .so or its
// folder), .deps/cuda/ beside the executable or the working directory (or a parent), then
// the core library's own folder.
func (f Finder) Find(core string) (Libraries, error) {
	var provider string
	var tried []string
	if p := f.getenv(ProviderEnv); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return Libraries{}, &MissingError{Files: []string{fmt.Sprintf("%s=%s: %v", ProviderEnv, p, errors.Unwrap(err))}}
		}
		if st.IsDir() {
			p = filepath.Join(p, ProviderFile)
		}
		if !isFile(p) {
			return Libraries{}, &MissingError{Files: []string{fmt.Sprintf("%s (from %s)", p, ProviderEnv)}}
		}
		provider = p
	}
	if provider == "" {
		for _, s := range f.starts() {
			if p, ok := findUpward(s, filepath.Join(depsDir, ProviderFile)); ok {
				provider = p
				break
			}
			tried = append(tried, filepath.Join(s, depsDir))
		}
	}
	coreDir := ""
	if core != "" && filepath.IsAbs(core) {
		coreDir = filepath.Dir(core)
	}
	if provider == "" && coreDir != "" {
		if p := filepath.Join(coreDir, ProviderFile); isFile(p) {
			provider = p
		}
		tried = append(tried, coreDir)
	}
	var missing MissingError
	if provider == "" {
		missing.Files = append(missing.Files, fmt.Sprintf("%s (looked in %s)", ProviderFile, strings.Join(tried, ", ")))
	}
	libs := Libraries{Provider: provider}
	if coreDir == "" {
		missing.Files = append(missing.Files, fmt.Sprintf("%s: the core library's folder is unknown (%q)", SharedFile, core))
	} else if p := filepath.Join(coreDir, SharedFile); isFile(p) {
		libs.Shared = p
	} else {
		missing.Files = append(missing.Files, fmt.Sprintf("%s must sit beside the ONNX Runtime core library in %s", SharedFile, coreDir))
	}
	if len(missing.Files) > 0 {
		return libs, &missing
	}
	return libs, nil
}

// CheckRuntime tries to load each of RuntimeLibraries and reports every one that fails.
func (f Finder) CheckRuntime() error {
	var missing MissingError
	for _, l := range RuntimeLibraries {
		if err := f.load(l.Soname); err != nil {
			missing.Libraries = append(missing.Libraries, fmt.Sprintf("%s (%s): %v", l.Soname, l.What, err))
		}
	}
	if len(missing.Libraries) > 0 {
		return &missing
	}
	return nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// findUpward looks for rel in dir and each of its parents.
func findUpward(dir, rel string) (string, bool) {
	for {
		p := filepath.Join(dir, rel)
		if isFile(p) {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
