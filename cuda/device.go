// Package cuda holds Infergo's GPU support: device selection now; the CUDA execution
// provider (registered as an ONNX Runtime plugin library) and GPU library discovery build on it.
package cuda

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is where a model runs.
type Kind uint8

// Device kinds. Auto picks CUDA when a usable GPU and the provider library are present and
// falls back to the CPU (with a warning) otherwise.
const (
	CPU Kind = iota
	CUDA
	Auto
)

// Device is a parsed --device value.
type Device struct {
	Kind Kind
	// ID is the CUDA device ordinal (CUDA only).
	ID int
}

// ParseDevice reads "cpu", "cuda", "cuda:N" or "auto" (case-insensitive; "gpu" is an alias
// of "cuda").
func ParseDevice(s string) (Device, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "cpu":
		return Device{Kind: CPU}, nil
	case "auto":
		return Device{Kind: Auto}, nil
	case "cuda", "gpu":
		return Device{Kind: CUDA}, nil
	}
	for _, prefix := range []string{"cuda:", "gpu:"} {
		if rest, ok := strings.CutPrefix(v, prefix); ok {
			id, err := strconv.Atoi(rest)
			if err != nil || id < 0 || rest != strconv.Itoa(id) {
				return Device{}, fmt.Errorf("cuda: device %q: want a device ordinal after %q", s, prefix)
			}
			return Device{Kind: CUDA, ID: id}, nil
		}
	}
	return Device{}, fmt.Errorf("cuda: unknown device %q (want cpu, cuda, cuda:N or auto)", s)
}

// String formats d as ParseDevice reads it ("cpu", "cuda:0", "auto").
func (d Device) String() string {
	switch d.Kind {
	case CUDA:
		return "cuda:" + strconv.Itoa(d.ID)
	case Auto:
		return "auto"
	}
	return "cpu"
}
