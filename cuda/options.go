package cuda

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Options are the CUDA execution provider's options Infergo exposes (the names are ONNX
// Runtime's CUDA provider option keys). The zero value is not the default: use
// DefaultOptions.
type Options struct {
	// GPUMemLimit caps the provider's memory arena in bytes (0: no cap).
	GPUMemLimit int64
	// ArenaExtendStrategy is "kNextPowerOfTwo" (ORT's default) or "kSameAsRequested".
	ArenaExtendStrategy string
	// CudnnConvAlgoSearch is "EXHAUSTIVE", "HEURISTIC" or "DEFAULT". Transformers have no
	// convolutions; HEURISTIC keeps start-up fast for models that do.
	CudnnConvAlgoSearch string
	// UseTF32 lets fp32 matrix products use TF32 tensor cores (on by default: about 10 bits
	// of mantissa in the products, well inside the 1e-3 cosine tolerance embeddings need).
	UseTF32 bool
	// CopyInDefaultStream copies inputs and outputs on the compute stream (ORT's default and
	// the safe choice).
	CopyInDefaultStream bool
	// CUDAGraph captures the graph once and replays it; only valid when every run has the
	// same input shapes (one fixed bucket), so it is off by default.
	CUDAGraph bool
	// Extra passes further provider options through verbatim (validated by ORT).
	Extra map[string]string
}

// DefaultOptions returns Infergo's defaults: no memory cap, TF32 on, heuristic cuDNN search.
func DefaultOptions() Options {
	return Options{
		ArenaExtendStrategy: "kNextPowerOfTwo",
		CudnnConvAlgoSearch: "HEURISTIC",
		UseTF32:             true,
		CopyInDefaultStream: true,
	}
}

// Option keys, as the CUDA execution provider names them.
const (
	keyDeviceID      = "device_id"
	keyGPUMemLimit   = "gpu_mem_limit"
	keyArenaExtend   = "arena_extend_strategy"
	keyCudnnSearch   = "cudnn_conv_algo_search"
	keyTF32          = "use_tf32"
	keyCopyInDefault = "do_copy_in_default_stream"
	keyCUDAGraph     = "enable_cuda_graph"
)

// ParseOptions reads "key=value,key=value" on top of DefaultOptions, e.g.
// "gpu_mem_limit=4GiB,use_tf32=0,cudnn_conv_algo_search=EXHAUSTIVE". Unknown keys are kept in
// Extra and passed to ONNX Runtime as they are; device_id comes from --device instead.
func ParseOptions(s string) (Options, error) {
	o := DefaultOptions()
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return Options{}, fmt.Errorf("cuda: option %q: want key=value", part)
		}
		var err error
		switch k {
		case keyDeviceID:
			return Options{}, fmt.Errorf("cuda: option %s: choose the device with --device cuda:N", k)
		case keyGPUMemLimit:
			o.GPUMemLimit, err = parseBytes(v)
		case keyArenaExtend:
			o.ArenaExtendStrategy, err = oneOf(v, "kNextPowerOfTwo", "kSameAsRequested")
		case keyCudnnSearch:
			o.CudnnConvAlgoSearch, err = oneOf(strings.ToUpper(v), "EXHAUSTIVE", "HEURISTIC", "DEFAULT")
		case keyTF32:
			o.UseTF32, err = parseBool(v)
		case keyCopyInDefault:
			o.CopyInDefaultStream, err = parseBool(v)
		case keyCUDAGraph:
			o.CUDAGraph, err = parseBool(v)
		default:
			if o.Extra == nil {
				o.Extra = map[string]string{}
			}
			o.Extra[k] = v
		}
		if err != nil {
			return Options{}, fmt.Errorf("cuda: option %s: %w", k, err)
		}
	}
	return o, nil
}

// KeyValues returns the provider options for device ordinal id, sorted by key.
func (o Options) KeyValues(id int) (keys, values []string) {
	m := map[string]string{
		keyDeviceID:      strconv.Itoa(id),
		keyArenaExtend:   o.ArenaExtendStrategy,
		keyCudnnSearch:   o.CudnnConvAlgoSearch,
		keyTF32:          boolString(o.UseTF32),
		keyCopyInDefault: boolString(o.CopyInDefaultStream),
		keyCUDAGraph:     boolString(o.CUDAGraph),
	}
	if o.GPUMemLimit > 0 {
		m[keyGPUMemLimit] = strconv.FormatInt(o.GPUMemLimit, 10)
	}
	if m[keyArenaExtend] == "" {
		delete(m, keyArenaExtend)
	}
	if m[keyCudnnSearch] == "" {
		delete(m, keyCudnnSearch)
	}
	for k, v := range o.Extra {
		if _, set := m[k]; !set {
			m[k] = v
		}
	}
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		values = append(values, m[k])
	}
	return keys, values
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true, nil
	case "0", "false", "off", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (1/0, true/false)", v)
}

func oneOf(v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// parseBytes reads a byte count: a plain integer or one with a KB/MB/GB (10^3) or
// KiB/MiB/GiB (2^10) suffix.
func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mul := v, int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			num, mul = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte count (e.g. 4294967296, 4GiB, 512MB)", v)
	}
	if n > (1<<62)/mul {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mul, nil
}
