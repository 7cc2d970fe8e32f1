package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/infergo/infergo/cuda"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
)

// profiling attaches the CUDA provider and turns on ONNX Runtime's profiler.
type profiling struct {
	inner  *cuda.Provider
	prefix string
}

func (p profiling) Name() string { return p.inner.Name() + "+profile" }

func (p profiling) Configure(o any) error {
	if err := p.inner.Configure(o); err != nil {
		return err
	}
	raw, _ := o.(unsafe.Pointer)
	return cuda.EnableProfiling(raw, p.prefix)
}

// profileVariant runs v's graph three times at shape on a profiled session; ONNX Runtime writes
// dir/<variant>_<time>.json (per node: time and provider) when the session closes. report.py
// summarises it.
func profileVariant(env *ort.Environment, dir string, v Variant, shape, out string) error {
	b, q, _ := strings.Cut(shape, "x")
	n, _ := strconv.Atoi(b)
	L, _ := strconv.Atoi(q)
	if n < 1 || L < 3 {
		return fmt.Errorf("profile shape %q", shape)
	}
	o, err := cuda.ParseOptions(v.CUDAOptions)
	if err != nil {
		return err
	}
	prov, err := cuda.NewProvider(env, cuda.Device{Kind: cuda.CUDA}, o, cuda.Finder{})
	if err != nil {
		return err
	}
	defer prov.Close()
	repo, err := models.OpenDir(dir)
	if err != nil {
		return err
	}
	spec := onnxgraph.Spec{Float16: v.Graph.Float16, FuseAttention: v.Graph.FuseAttention, AttentionMask: v.Graph.AttentionMask}
	ropts := runtime.Options{IntraOpThreads: 1, InterOpThreads: 1, Provider: profiling{inner: prov, prefix: filepath.Join(out, v.Name)}}
	if v.Graph.PoolInGraph {
		spec.Pool = &onnxgraph.PoolSpec{Mode: models.PoolMean}
		ropts.Outputs = []string{onnxgraph.PooledOutput}
	}
	path, err := onnxgraph.Prepare(repo.Path("onnx/model.onnx"), spec)
	if err != nil {
		return err
	}
	sess, err := env.Open(context.Background(), path, ropts)
	if err != nil {
		return err
	}
	defer sess.Close()
	ids, mask := make([]int64, n*L), make([]int64, n*L)
	for i := range ids {
		ids[i], mask[i] = int64(1000+i%20000), 1
	}
	shp := []int64{int64(n), int64(L)}
	in := []runtime.Tensor{runtime.NewTensor(shp, ids), runtime.NewTensor(shp, mask), runtime.Zeros[int64](shp...)}
	for i := 0; i < 3; i++ {
		if err := sess.Run(context.Background(), in, make([]runtime.Tensor, len(sess.Info().Outputs))); err != nil {
			return err
		}
	}
	return nil
}
