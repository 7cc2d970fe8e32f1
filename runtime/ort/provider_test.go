package ort

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/cuda"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
)

// TestRawSessionOptions proves that rawOptions returns onnxruntime_go's OrtSessionOptions*:
// an entry written through it with the C API (package cuda's shim) reads back through
// onnxruntime_go, and the other way round.
func TestRawSessionOptions(t *testing.T) {
	env := newEnv(t)
	if err := cuda.Bind(env.Library()); err != nil {
		t.Fatal(err)
	}
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	raw := rawOptions(opts)
	if err := cuda.AddSessionConfigEntry(raw, "infergo.probe", "via-shim"); err != nil {
		t.Fatal(err)
	}
	if v, err := opts.GetSessionConfigEntry("infergo.probe"); err != nil || v != "via-shim" {
		t.Errorf("onnxruntime_go reads %q, %v", v, err)
	}
	if err := opts.AddSessionConfigEntry("infergo.back", "via-ortgo"); err != nil {
		t.Fatal(err)
	}
	if v, err := cuda.SessionConfigEntry(raw, "infergo.back"); err != nil || v != "via-ortgo" {
		t.Errorf("shim reads %q, %v", v, err)
	}
}

// probeProvider records what Configure receives and writes a config entry through it.
type probeProvider struct{ got any }

func (p *probeProvider) Name() string { return "probe" }
func (p *probeProvider) Configure(o any) error {
	p.got = o
	raw, ok := o.(unsafe.Pointer)
	if !ok {
		return errors.New("not an unsafe.Pointer")
	}
	return cuda.AddSessionConfigEntry(raw, "infergo.configured", "1")
}

// TestProviderConfigureGetsRawOptions: sessionOptions hands providers the raw pointer, and a
// session still opens and runs with the options they changed.
func TestProviderConfigureGetsRawOptions(t *testing.T) {
	env := newEnv(t)
	if err := cuda.Bind(env.Library()); err != nil {
		t.Fatal(err)
	}
	p := &probeProvider{}
	opts, err := sessionOptions(runtime.Options{Provider: p})
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if p.got != rawOptions(opts) {
		t.Errorf("Configure got %v, want the raw options %v", p.got, rawOptions(opts))
	}
	if v, err := opts.GetSessionConfigEntry("infergo.configured"); err != nil || v != "1" {
		t.Errorf("entry %q, %v", v, err)
	}
	sess, err := env.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), runtime.Options{Provider: p, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
}

// TestRegisterProviderLibrary: registration is idempotent per name and path, a second path
// is refused, and a file that is not a provider fails with ONNX Runtime's reason.
func TestRegisterProviderLibrary(t *testing.T) {
	env := newEnv(t)
	fake := filepath.Join(t.TempDir(), "libfake_provider.so")
	os.WriteFile(fake, []byte("not a library"), 0o644)
	err := env.RegisterExecutionProviderLibrary("FAKE", fake)
	if err == nil || !strings.Contains(err.Error(), "libfake_provider.so") {
		t.Fatalf("fake provider: %v", err)
	}
	// A failed registration is not remembered: the same call fails again the same way.
	if err2 := env.RegisterExecutionProviderLibrary("FAKE", fake); err2 == nil {
		t.Error("second attempt succeeded")
	}
}

// TestEnableProfiling: a session configured through the shim writes ONNX Runtime's profile.
func TestEnableProfiling(t *testing.T) {
	env := newEnv(t)
	if err := cuda.Bind(env.Library()); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "prof")
	p := profiler{prefix: prefix}
	sess, err := env.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), runtime.Options{Provider: p, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	// One from Open's temporary session that reads the inputs and outputs, one from the session.
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 2 {
		t.Fatalf("profiles %v", files)
	}
}

type profiler struct{ prefix string }

func (p profiler) Name() string { return "profiler" }
func (p profiler) Configure(o any) error {
	return cuda.EnableProfiling(o.(unsafe.Pointer), p.prefix)
}
