package main

import (
	"fmt"
	"log/slog"

	"github.com/infergo/infergo/cuda"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/ort"
)

// DeviceFlags tune how a model runs on its device. Their defaults follow --device: on CUDA the
// graph pools in the graph, attention is fused and batches are padded to 16-token buckets; on
// the CPU the graph runs as exported.
type DeviceFlags struct {
	CUDAOptions   string `name:"cuda-options" env:"INFERGO_CUDA_OPTIONS" help:"CUDA provider options as key=value,… : gpu_mem_limit (bytes, or 4GiB), arena_extend_strategy (kNextPowerOfTwo|kSameAsRequested), cudnn_conv_algo_search (EXHAUSTIVE|HEURISTIC|DEFAULT), use_tf32 (default 1), do_copy_in_default_stream, enable_cuda_graph; others pass through to ONNX Runtime."`
	Precision     string `default:"fp32" enum:"fp32,fp16" env:"INFERGO_PRECISION" help:"Weights and arithmetic: fp32, or fp16 (CUDA only; inputs and outputs stay float32)."`
	PoolInGraph   string `name:"pool-in-graph" default:"auto" enum:"auto,on,off" env:"INFERGO_POOL_IN_GRAPH" help:"Append the sentence-transformers pooling to the graph so only [batch, hidden] leaves the device (auto: on for CUDA)."`
	FuseAttention string `name:"fuse-attention" default:"auto" enum:"auto,on,off" env:"INFERGO_FUSE_ATTENTION" help:"Replace encoder attention with ONNX Runtime's fused MultiHeadAttention (auto: on for CUDA)."`
	SeqBucket     int    `name:"seq-bucket" default:"-1" env:"INFERGO_SEQ_BUCKET" help:"Pad each batch's sequence length up to a multiple of this (-1: 16 on CUDA, off on the CPU; 0 or 1: off)."`
}

// graphOptions resolves the device-dependent defaults.
func (f DeviceFlags) graphOptions(onCUDA bool) pipelines.GraphOptions {
	g := pipelines.GraphOptions{
		PoolInGraph:   f.PoolInGraph == "on" || (f.PoolInGraph == "auto" && onCUDA),
		Float16:       f.Precision == "fp16" && onCUDA,
		FuseAttention: f.FuseAttention == "on" || (f.FuseAttention == "auto" && onCUDA),
		SeqBucket:     f.SeqBucket,
	}
	if g.SeqBucket < 0 {
		g.SeqBucket = 0
		if onCUDA {
			g.SeqBucket = 16
		}
	}
	return g
}

// engine is ONNX Runtime and, on CUDA, the execution provider sessions are attached to.
type engine struct {
	env      *ort.Environment
	provider *cuda.Provider // nil on the CPU
}

// openEngine loads ONNX Runtime and the provider --device asks for: cuda fails with every
// missing piece named, auto falls back to the CPU with a warning.
func (c *ModelFlags) openEngine(log *slog.Logger) (*engine, error) {
	d, err := cuda.ParseDevice(c.Device)
	if err != nil {
		return nil, err
	}
	opts, err := cuda.ParseOptions(c.CUDAOptions)
	if err != nil {
		return nil, err
	}
	if c.Precision == "fp16" && d.Kind == cuda.CPU {
		return nil, fmt.Errorf("--precision fp16 needs --device cuda (the CPU has few float16 kernels)")
	}
	env, err := ort.NewEnvironment(c.ORTLib)
	if err != nil {
		return nil, err
	}
	p, err := cuda.Select(env, d, opts, cuda.Finder{}, log)
	if err != nil {
		env.Close()
		return nil, err
	}
	if p != nil {
		dev := p.Device()
		log.Info("CUDA execution provider attached", "device", p.Name(), "provider", p.Libraries().Provider,
			"vendor", dev.Vendor, "pci_device", fmt.Sprintf("%#x", dev.DeviceID), "options", p.Options())
	} else if c.Precision == "fp16" {
		log.Warn("--precision fp16 ignored on the CPU")
	}
	return &engine{env: env, provider: p}, nil
}

func (e *engine) device() string {
	if e.provider != nil {
		return e.provider.Name()
	}
	return "cpu"
}

func (e *engine) computeType() string {
	if e.provider != nil {
		return "gpu"
	}
	return "cpu"
}

// Close releases the provider, then the environment; models must be closed first.
func (e *engine) Close() error {
	if e.provider != nil {
		e.provider.Close()
	}
	return e.env.Close()
}
