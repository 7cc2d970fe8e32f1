package cuda

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
)

func newEngine(t *testing.T) *ort.Environment {
	t.Helper()
	e, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestEpDevicesOnCPU: with no plugin registered, ONNX Runtime's device list still holds the
// CPU provider on the CPU — the enumeration path the CUDA provider is picked from.
func TestEpDevicesOnCPU(t *testing.T) {
	devs, err := Devices(newEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range devs {
		t.Logf("%s (%s) on %s %s vendor %#x device %#x metadata %v", d.EP, d.EPVendor, d.Type, d.Vendor, d.VendorID, d.DeviceID, d.Metadata)
		if d.EP == "CPUExecutionProvider" && d.Type == HardwareCPU {
			found = true
		}
	}
	if !found {
		t.Fatalf("no CPUExecutionProvider in %+v", devs)
	}
	if _, err := pickDevice(devs, 0); err == nil || !strings.Contains(err.Error(), "reports no GPU") {
		t.Errorf("pickDevice on a CPU-only list: %v", err)
	}
}

// TestEnvIsSharedSingleton: CreateEnv hands out onnxruntime_go's environment (same pointer
// each time, reference counted), so releasing the shim's references leaves it working.
func TestEnvIsSharedSingleton(t *testing.T) {
	eng := newEngine(t)
	if err := Bind(eng.Library()); err != nil {
		t.Fatal(err)
	}
	a, err := acquireEnv()
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireEnv()
	if err != nil {
		t.Fatal(err)
	}
	if a.p != b.p {
		t.Errorf("two environments: %p %p", a.p, b.p)
	}
	shared := b.p
	a.release()
	b.release()
	c, err := acquireEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	if c.p != shared {
		t.Errorf("environment changed after release: %p → %p", shared, c.p)
	}
	// onnxruntime_go's environment still runs sessions.
	sess, err := eng.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := runtime.NewTensor([]int64{1, 3}, []int64{2, 50, 3})
	in := []runtime.Tensor{ids, runtime.NewTensor([]int64{1, 3}, []int64{1, 1, 1}), runtime.Zeros[int64](1, 3)}
	out := make([]runtime.Tensor, 1)
	if err := sess.Run(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	sess.Close()
}

func hasDriver() bool { return dlopenCheck("libcuda.so.1") == nil }

// TestNewProviderNamesWhatIsMissing runs on machines without a GPU: the error names the
// driver and the CUDA libraries that cannot be loaded.
func TestNewProviderNamesWhatIsMissing(t *testing.T) {
	if hasDriver() {
		t.Skip("an NVIDIA driver is installed; see the GPU suite")
	}
	eng := newEngine(t)
	_, err := NewProvider(eng, Device{Kind: CUDA}, DefaultOptions(), Finder{})
	if err == nil {
		t.Fatal("NewProvider succeeded without a GPU")
	}
	for _, want := range []string{"libcuda.so.1 (NVIDIA driver)", "libcudart.so.13", "libcudnn.so.9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := NewProvider(eng, Device{Kind: CPU}, DefaultOptions(), Finder{}); err == nil {
		t.Error("NewProvider accepted a CPU device")
	}
}

// TestSelect: cpu needs nothing, cuda fails loudly, auto falls back with a warning that
// names what is missing.
func TestSelect(t *testing.T) {
	if hasDriver() {
		t.Skip("an NVIDIA driver is installed; see the GPU suite")
	}
	eng := newEngine(t)
	if p, err := Select(eng, Device{Kind: CPU}, DefaultOptions(), Finder{}, nil); p != nil || err != nil {
		t.Errorf("cpu: %v %v", p, err)
	}
	if _, err := Select(eng, Device{Kind: CUDA, ID: 1}, DefaultOptions(), Finder{}, nil); err == nil {
		t.Error("cuda:1 selected without a GPU")
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := Select(eng, Device{Kind: Auto}, DefaultOptions(), Finder{}, log)
	if p != nil || err != nil {
		t.Fatalf("auto: %v %v", p, err)
	}
	if s := buf.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "libcuda.so.1") || !strings.Contains(s, "running on the CPU") {
		t.Errorf("warning: %s", s)
	}
}

// TestNewProviderRegistrationError: when every file and library looks present but the
// provider is not a loadable library, the error comes from ONNX Runtime's registration.
func TestNewProviderRegistrationError(t *testing.T) {
	eng := newEngine(t)
	if err := Bind(eng.Library()); err != nil {
		t.Fatal(err)
	}
	core := corePath()
	if _, err := os.Stat(filepath.Join(filepath.Dir(core), SharedFile)); err != nil {
		t.Skipf("%s is not beside %s (make deps-gpu puts it there)", SharedFile, core)
	}
	fake := touch(t, filepath.Join(t.TempDir(), ProviderFile))
	f := Finder{Getenv: fakeEnv(map[string]string{ProviderEnv: fake}), Load: func(string) error { return nil }}
	_, err := NewProvider(eng, Device{Kind: CUDA}, DefaultOptions(), f)
	if err == nil || !strings.Contains(err.Error(), "cuda: register "+fake) {
		t.Errorf("got %v", err)
	}
}

func TestConfigureRejectsOtherOptions(t *testing.T) {
	p := &Provider{device: Device{Kind: CUDA}}
	if err := p.Configure("not options"); err == nil || !strings.Contains(err.Error(), "unsafe.Pointer") {
		t.Errorf("string: %v", err)
	}
	var x int
	if err := p.Configure(unsafe.Pointer(&x)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("closed provider: %v", err)
	}
	if p.Name() != "cuda:0" {
		t.Errorf("name %q", p.Name())
	}
}

func TestPickDevice(t *testing.T) {
	devs := []EpDevice{
		{EP: "CPUExecutionProvider", Type: HardwareCPU},
		{EP: EPName, Type: HardwareGPU, DeviceID: 1},
		{EP: EPName, Type: HardwareGPU, DeviceID: 2, EPOptions: map[string]string{"device_id": "0"}},
	}
	if d, err := pickDevice(devs, 0); err != nil || d.DeviceID != 2 {
		t.Errorf("by device_id option: %+v %v", d, err)
	}
	if d, err := pickDevice(devs, 1); err != nil || d.DeviceID != 2 {
		t.Errorf("by order: %+v %v", d, err)
	}
	if _, err := pickDevice(devs, 2); err == nil || !strings.Contains(err.Error(), "2 GPU(s)") {
		t.Errorf("out of range: %v", err)
	}
}
