package cuda

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Engine is what the CUDA provider needs from the ONNX Runtime binding; runtime/ort's
// *Environment implements it. Keeping it an interface keeps onnxruntime_go out of this
// package: the shim reaches ONNX Runtime only through the C API of the loaded library.
type Engine interface {
	// Library is the path the ONNX Runtime core library was loaded from.
	Library() string
	// RegisterExecutionProviderLibrary registers a plugin provider library once per process.
	RegisterExecutionProviderLibrary(name, path string) error
}

// Names ONNX Runtime uses for the provider.
const (
	RegistrationName = "CUDA"
	EPName           = "CUDAExecutionProvider"
	nvidiaVendorID   = 0x10de
)

// Provider attaches the CUDA execution provider for one GPU to sessions. It implements
// runtime.ProviderConfigurer; Configure takes the raw OrtSessionOptions* that runtime/ort
// passes as an unsafe.Pointer. Close it after the sessions it configured are closed.
type Provider struct {
	device Device
	libs   Libraries
	keys   []string
	values []string

	mu  sync.Mutex
	env env
	dev EpDevice
}

// NewProvider checks the set-up (provider files, driver, CUDA 13 libraries), registers the
// provider library with ONNX Runtime and finds the GPU d names. Every missing piece is named
// in the error (a *MissingError when files or libraries are missing).
func NewProvider(eng Engine, d Device, o Options, f Finder) (*Provider, error) {
	if d.Kind != CUDA {
		return nil, fmt.Errorf("cuda: NewProvider needs a CUDA device, got %s", d)
	}
	if err := Bind(eng.Library()); err != nil {
		return nil, err
	}
	core := corePath()
	if core == "" {
		core = eng.Library()
	}
	libs, ferr := f.Find(core)
	rerr := f.CheckRuntime()
	if ferr != nil || rerr != nil {
		return nil, mergeMissing(ferr, rerr)
	}
	if err := eng.RegisterExecutionProviderLibrary(RegistrationName, libs.Provider); err != nil {
		return nil, fmt.Errorf("cuda: register %s: %w", libs.Provider, err)
	}
	e, err := acquireEnv()
	if err != nil {
		return nil, err
	}
	devs, err := epDevices(e)
	if err != nil {
		e.release()
		return nil, err
	}
	dev, err := pickDevice(devs, d.ID)
	if err != nil {
		e.release()
		return nil, err
	}
	keys, values := o.KeyValues(d.ID)
	return &Provider{device: d, libs: libs, keys: keys, values: values, env: e, dev: dev}, nil
}

func mergeMissing(errs ...error) error {
	var out MissingError
	var other []error
	for _, err := range errs {
		var m *MissingError
		switch {
		case err == nil:
		case errors.As(err, &m):
			out.Files = append(out.Files, m.Files...)
			out.Libraries = append(out.Libraries, m.Libraries...)
		default:
			other = append(other, err)
		}
	}
	if len(other) > 0 {
		return errors.Join(append(other, &out)...)
	}
	return &out
}

// pickDevice finds the CUDA provider's device for ordinal id: the one whose provider options
// or metadata say device_id=id, else the id-th CUDA device in ONNX Runtime's order (which
// follows the CUDA ordinals).
func pickDevice(devs []EpDevice, id int) (EpDevice, error) {
	var gpus []EpDevice
	for _, d := range devs {
		if d.EP == EPName && d.Type == HardwareGPU {
			gpus = append(gpus, d)
		}
	}
	want := strconv.Itoa(id)
	for _, d := range gpus {
		for _, m := range []map[string]string{d.EPOptions, d.EPMetadata, d.Metadata} {
			if v, ok := m["device_id"]; ok && v == want {
				return d, nil
			}
		}
	}
	if id < len(gpus) {
		return gpus[id], nil
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.EP + "/" + string(d.Type)
	}
	if len(gpus) == 0 {
		return EpDevice{}, fmt.Errorf("cuda: the CUDA provider loaded but reports no GPU (devices: %s); check nvidia-smi and CUDA_VISIBLE_DEVICES", strings.Join(names, ", "))
	}
	return EpDevice{}, fmt.Errorf("cuda: no CUDA device %d: %d GPU(s) visible", id, len(gpus))
}

// Name implements runtime.ProviderConfigurer ("cuda:0").
func (p *Provider) Name() string { return p.device.String() }

// Device returns the GPU's ONNX Runtime description.
func (p *Provider) Device() EpDevice { return p.dev }

// Libraries returns the provider files in use.
func (p *Provider) Libraries() Libraries { return p.libs }

// Options returns the provider options passed to ONNX Runtime.
func (p *Provider) Options() map[string]string {
	m := make(map[string]string, len(p.keys))
	for i, k := range p.keys {
		m[k] = p.values[i]
	}
	return m
}

// Configure implements runtime.ProviderConfigurer: engineOptions is the raw
// OrtSessionOptions* (unsafe.Pointer) of the session being created.
func (p *Provider) Configure(engineOptions any) error {
	raw, ok := engineOptions.(unsafe.Pointer)
	if !ok || raw == nil {
		return fmt.Errorf("cuda: Configure needs the raw OrtSessionOptions* as unsafe.Pointer, got %T", engineOptions)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.env.p == nil {
		return errors.New("cuda: provider closed")
	}
	if err := appendV2(raw, p.env, p.dev, p.keys, p.values); err != nil {
		return fmt.Errorf("cuda: attach %s to the session: %w", EPName, err)
	}
	return nil
}

// Close drops the provider's reference to the ONNX Runtime environment. Idempotent.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env.release()
	return nil
}

// Select turns a --device choice into a provider: nil for the CPU. For Auto, anything that
// keeps CUDA from working (no provider files, no driver, no GPU) is logged as a warning that
// names it, and the CPU is used; for CUDA it is an error.
func Select(eng Engine, d Device, o Options, f Finder, log *slog.Logger) (*Provider, error) {
	switch d.Kind {
	case CPU:
		return nil, nil
	case CUDA:
		return NewProvider(eng, d, o, f)
	}
	p, err := NewProvider(eng, Device{Kind: CUDA, ID: d.ID}, o, f)
	if err != nil {
		if log == nil {
			log = slog.Default()
		}
		log.Warn("--device auto: CUDA is not usable, running on the CPU", "reason", err.Error())
		return nil, nil
	}
	return p, nil
}

// Devices lists the execution-provider devices of eng's environment (the CPU provider, plus
// those of registered plugins).
func Devices(eng Engine) ([]EpDevice, error) {
	if err := Bind(eng.Library()); err != nil {
		return nil, err
	}
	e, err := acquireEnv()
	if err != nil {
		return nil, err
	}
	defer e.release()
	return epDevices(e)
}
