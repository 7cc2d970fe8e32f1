package cuda

// #cgo CFLAGS: -O2 -I${SRCDIR}/capi
// #cgo LDFLAGS: -ldl
// #include <stdlib.h>
// #include "ortapi.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// The OrtApi table is process-wide by nature (one core library per process). It is bound
// once; a failed attempt (the core not loaded yet) may be retried.
var (
	apiMu   sync.Mutex
	apiPath string // the library the shim is bound to; "" until Bind succeeds
)

// Bind attaches the shim to the ONNX Runtime core library at library (the path onnxruntime_go
// loaded, e.g. ort.Environment.Library()). Every other call needs it first. It is idempotent;
// binding to a second, different library fails: a process has one core library.
func Bind(library string) error {
	apiMu.Lock()
	defer apiMu.Unlock()
	if apiPath != "" {
		if library != apiPath {
			return fmt.Errorf("cuda: the shim is bound to %s, not %s", apiPath, library)
		}
		return nil
	}
	cp := C.CString(library)
	defer C.free(unsafe.Pointer(cp))
	if msg := C.infergo_ort_init(cp); msg != nil {
		return fmt.Errorf("cuda: %s (%s)", C.GoString(msg), library)
	}
	apiPath = library
	return nil
}

// ready reports whether Bind succeeded.
func ready() error {
	apiMu.Lock()
	defer apiMu.Unlock()
	if apiPath == "" {
		return errors.New("cuda: not bound to an ONNX Runtime library (call Bind first)")
	}
	return nil
}

// corePath returns the file the core library was loaded from, as the dynamic linker saw it.
func corePath() string {
	if p := C.infergo_ort_core_path(); p != nil {
		return C.GoString(p)
	}
	return ""
}

// statusError turns an OrtStatus into an error and releases it.
func statusError(s *C.OrtStatus) error {
	if s == nil {
		return nil
	}
	msg := strings.TrimSpace(C.GoString(C.infergo_status_message(s)))
	C.infergo_release_status(s)
	return errors.New(msg)
}

// dlopenCheck reports whether the dynamic linker can load name (a bare soname or a path).
func dlopenCheck(name string) error {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var buf [512]C.char
	if msg := C.infergo_dlopen_check(cn, &buf[0], C.size_t(len(buf))); msg != nil {
		return errors.New(C.GoString(msg))
	}
	return nil
}

// env is one reference to ONNX Runtime's process-wide OrtEnv. CreateEnv hands out the
// existing environment (the one onnxruntime_go created) and counts references, so holding
// one keeps it alive and releasing it never tears down onnxruntime_go's (see env_test.go).
type env struct{ p *C.OrtEnv }

func acquireEnv() (env, error) {
	var p *C.OrtEnv
	if err := statusError(C.infergo_create_env(&p)); err != nil {
		return env{}, fmt.Errorf("cuda: get the ONNX Runtime environment: %w", err)
	}
	return env{p: p}, nil
}

func (e *env) release() {
	if e.p != nil {
		C.infergo_release_env(e.p)
		e.p = nil
	}
}

// HardwareType is the kind of device an execution provider runs on.
type HardwareType string

// Hardware types as ONNX Runtime reports them.
const (
	HardwareCPU HardwareType = "cpu"
	HardwareGPU HardwareType = "gpu"
	HardwareNPU HardwareType = "npu"
)

// EpDevice is one (execution provider, hardware device) pair ONNX Runtime can run sessions
// on: the CPU provider on the CPU always, and each registered plugin on what it supports.
type EpDevice struct {
	EP       string // "CPUExecutionProvider", "CUDAExecutionProvider", …
	EPVendor string
	Type     HardwareType
	Vendor   string
	VendorID uint32 // PCI vendor id (0x10de for NVIDIA)
	DeviceID uint32 // PCI device id (not the CUDA ordinal)
	// Metadata describes the hardware; EPMetadata and EPOptions come from the provider
	// (EPOptions holds the defaults it would use for this device, e.g. device_id).
	Metadata, EPMetadata, EPOptions map[string]string

	ptr *C.OrtEpDevice // owned by the environment, valid while it lives
}

func epDevices(e env) ([]EpDevice, error) {
	var list **C.OrtEpDevice
	var n C.size_t
	if err := statusError(C.infergo_get_ep_devices(e.p, &list, &n)); err != nil {
		return nil, fmt.Errorf("cuda: list execution-provider devices: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	ptrs := unsafe.Slice(list, int(n))
	out := make([]EpDevice, len(ptrs))
	for i, p := range ptrs {
		d := EpDevice{
			EP:       C.GoString(C.infergo_ep_name(p)),
			EPVendor: C.GoString(C.infergo_ep_vendor(p)),
			VendorID: uint32(C.infergo_hw_vendor_id(p)),
			DeviceID: uint32(C.infergo_hw_device_id(p)),
			Vendor:   C.GoString(C.infergo_hw_vendor(p)),
			ptr:      p,
		}
		switch C.infergo_hw_type(p) {
		case C.OrtHardwareDeviceType_CPU:
			d.Type = HardwareCPU
		case C.OrtHardwareDeviceType_GPU:
			d.Type = HardwareGPU
		case C.OrtHardwareDeviceType_NPU:
			d.Type = HardwareNPU
		}
		d.Metadata, d.EPMetadata, d.EPOptions = kv(p, 0), kv(p, 1), kv(p, 2)
		out[i] = d
	}
	return out, nil
}

func kv(p *C.OrtEpDevice, which C.int) map[string]string {
	var keys, vals **C.char
	n := int(C.infergo_ep_kv(p, which, &keys, &vals))
	m := make(map[string]string, n)
	if n == 0 {
		return m
	}
	ks, vs := unsafe.Slice(keys, n), unsafe.Slice(vals, n)
	for i := range ks {
		m[C.GoString(ks[i])] = C.GoString(vs[i])
	}
	return m
}

// cStrings copies ss into C memory; free releases it.
func cStrings(ss []string) (**C.char, func()) {
	if len(ss) == 0 {
		return nil, func() {}
	}
	arr := (**C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	s := unsafe.Slice(arr, len(ss))
	for i, v := range ss {
		s[i] = C.CString(v)
	}
	return arr, func() {
		for _, p := range s {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(arr))
	}
}

// appendV2 attaches dev's execution provider to the raw OrtSessionOptions* opts.
func appendV2(opts unsafe.Pointer, e env, dev EpDevice, keys, values []string) error {
	ck, freeK := cStrings(keys)
	defer freeK()
	cv, freeV := cStrings(values)
	defer freeV()
	return statusError(C.infergo_append_v2((*C.OrtSessionOptions)(opts), e.p, dev.ptr, ck, cv, C.size_t(len(keys))))
}

// Policy is an ONNX Runtime execution-provider selection policy.
type Policy int

// Selection policies (OrtExecutionProviderDevicePolicy).
const (
	PolicyDefault    Policy = C.OrtExecutionProviderDevicePolicy_DEFAULT
	PolicyPreferCPU  Policy = C.OrtExecutionProviderDevicePolicy_PREFER_CPU
	PolicyPreferGPU  Policy = C.OrtExecutionProviderDevicePolicy_PREFER_GPU
	PolicyMaxPerf    Policy = C.OrtExecutionProviderDevicePolicy_MAX_PERFORMANCE
	policyUpperBound Policy = C.OrtExecutionProviderDevicePolicy_MIN_OVERALL_POWER
)

// SetEpSelectionPolicy lets ONNX Runtime pick the providers for a session (an alternative to
// an explicit device; provider options cannot be passed this way). opts is the raw
// OrtSessionOptions* that runtime/ort hands to ProviderConfigurer.Configure.
func SetEpSelectionPolicy(opts unsafe.Pointer, p Policy) error {
	if err := ready(); err != nil {
		return err
	}
	if opts == nil {
		return errors.New("cuda: nil session options")
	}
	if p < PolicyDefault || p > policyUpperBound {
		return fmt.Errorf("cuda: unknown selection policy %d", p)
	}
	return statusError(C.infergo_set_ep_policy((*C.OrtSessionOptions)(opts), C.int(p)))
}

// AddSessionConfigEntry sets a session configuration entry on the raw OrtSessionOptions*.
func AddSessionConfigEntry(opts unsafe.Pointer, key, value string) error {
	if err := ready(); err != nil {
		return err
	}
	if opts == nil {
		return errors.New("cuda: nil session options")
	}
	ck, cv := C.CString(key), C.CString(value)
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(cv))
	return statusError(C.infergo_add_config_entry((*C.OrtSessionOptions)(opts), ck, cv))
}

// SessionConfigEntry reads a session configuration entry from the raw OrtSessionOptions*.
func SessionConfigEntry(opts unsafe.Pointer, key string) (string, error) {
	if err := ready(); err != nil {
		return "", err
	}
	if opts == nil {
		return "", errors.New("cuda: nil session options")
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var n C.size_t
	if err := statusError(C.infergo_get_config_entry((*C.OrtSessionOptions)(opts), ck, nil, &n)); err != nil {
		return "", err
	}
	buf := make([]byte, int(n))
	if n == 0 {
		return "", nil
	}
	if err := statusError(C.infergo_get_config_entry((*C.OrtSessionOptions)(opts), ck, (*C.char)(unsafe.Pointer(&buf[0])), &n)); err != nil {
		return "", err
	}
	return strings.TrimRight(string(buf), "\x00"), nil
}

// EnableProfiling turns on ONNX Runtime's profiler for sessions made with the raw
// OrtSessionOptions*: each session writes <prefix>_<time>.json (Chrome trace format, one event
// per node run with its provider) when it is closed. For benchmarks; it slows runs down.
func EnableProfiling(opts unsafe.Pointer, prefix string) error {
	if err := ready(); err != nil {
		return err
	}
	if opts == nil {
		return errors.New("cuda: nil session options")
	}
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	return statusError(C.infergo_enable_profiling((*C.OrtSessionOptions)(opts), cp))
}
