// Package ort implements runtime.Session and runtime.Opener on ONNX Runtime through
// github.com/yalue/onnxruntime_go. It is the only package that imports onnxruntime_go.
package ort

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/runtime"
)

// ONNX Runtime keeps one environment per process. Environments handed out by Open share it
// and count references, so independent components (tests, reloaded models) can each hold one.
var (
	envMu      sync.Mutex
	envRefs    int
	envLibrary string
	// envProviders maps registration names of plugin provider libraries to their paths; a
	// registration lives as long as the environment.
	envProviders map[string]string
)

// Environment is a reference to the process's ONNX Runtime environment. It implements
// runtime.Opener.
type Environment struct {
	library string
	once    sync.Once
}

var _ runtime.Opener = (*Environment)(nil)

// NewEnvironment loads the ONNX Runtime library (library == "" means FindLibrary) and
// initialises the environment, or joins the one already initialised. Asking for a different
// library than the one already loaded is an error.
func NewEnvironment(library string) (*Environment, error) {
	if library == "" {
		var err error
		if library, err = FindLibrary(); err != nil {
			return nil, err
		}
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 {
		if library != envLibrary {
			return nil, fmt.Errorf("ort: environment already uses %s, cannot switch to %s", envLibrary, library)
		}
		envRefs++
		return &Environment{library: library}, nil
	}
	ortgo.SetSharedLibraryPath(library)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("ort: load %s (run `make deps` or set %s): %w", library, LibraryEnv, err)
	}
	envRefs, envLibrary = 1, library
	return &Environment{library: library}, nil
}

// Library returns the path of the loaded ONNX Runtime library.
func (e *Environment) Library() string { return e.library }

// Version returns the ONNX Runtime version string.
func (e *Environment) Version() string { return ortgo.GetVersion() }

// RegisterExecutionProviderLibrary registers a plugin execution-provider library (CUDA, …)
// with the process's environment. Registering the same name and path again is a no-op, so
// each model load may ask; another path under a registered name is an error.
func (e *Environment) RegisterExecutionProviderLibrary(name, path string) error {
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs == 0 {
		return fmt.Errorf("ort: register %s: the environment is closed", name)
	}
	if have, ok := envProviders[name]; ok {
		if have != path {
			return fmt.Errorf("ort: provider library %q is registered from %s, not %s", name, have, path)
		}
		return nil
	}
	if err := ortgo.RegisterExecutionProviderLibrary(name, path); err != nil {
		return fmt.Errorf("ort: register provider library %s: %w", path, err)
	}
	if envProviders == nil {
		envProviders = map[string]string{}
	}
	envProviders[name] = path
	return nil
}

// Close drops this reference; the last one destroys the environment. Sessions must be
// closed first. Close is idempotent.
func (e *Environment) Close() error {
	var err error
	e.once.Do(func() {
		envMu.Lock()
		defer envMu.Unlock()
		envRefs--
		if envRefs == 0 {
			if derr := ortgo.DestroyEnvironment(); derr != nil {
				err = fmt.Errorf("ort: destroy environment: %w", derr)
			}
			envLibrary, envProviders = "", nil
		}
	})
	return err
}

// Open loads the graph at path. External data files (model.onnx_data, model.onnx.data) are
// resolved by ONNX Runtime relative to the graph's own directory, so path is made absolute
// and the process working directory is never changed.
func (e *Environment) Open(ctx context.Context, path string, o runtime.Options) (runtime.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ort: open %s: %w", path, err)
	}
	return openSession(abs, o)
}
