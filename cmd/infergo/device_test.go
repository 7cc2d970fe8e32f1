package main

import (
	"log/slog"
	goruntime "runtime"

	"os/exec"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines"
	rt "github.com/infergo/infergo/runtime"
)

func TestGraphOptionsDefaults(t *testing.T) {
	for _, c := range []struct {
		f    DeviceFlags
		cuda bool
		want pipelines.GraphOptions
	}{
		{DeviceFlags{Precision: "fp32", PoolInGraph: "auto", FuseAttention: "auto", SeqBucket: -1}, false, pipelines.GraphOptions{}},
		{DeviceFlags{Precision: "fp32", PoolInGraph: "auto", FuseAttention: "auto", SeqBucket: -1}, true, pipelines.GraphOptions{PoolInGraph: true, FuseAttention: true, SeqBucket: 16}},
		{DeviceFlags{Precision: "fp16", PoolInGraph: "off", FuseAttention: "off", SeqBucket: 8}, true, pipelines.GraphOptions{Float16: true, SeqBucket: 8}},
		{DeviceFlags{Precision: "fp16", PoolInGraph: "on", FuseAttention: "on", SeqBucket: 0}, false, pipelines.GraphOptions{PoolInGraph: true, FuseAttention: true}},
	} {
		if got := c.f.graphOptions(c.cuda); got != c.want {
			t.Errorf("%+v cuda=%v: %+v, want %+v", c.f, c.cuda, got, c.want)
		}
	}
}

// TestServeDeviceErrors: bad --device values and CUDA without a GPU fail at once with a
// message that says why; fp16 on the CPU is refused.
func TestServeDeviceErrors(t *testing.T) {
	if exec.Command("sh", "-c", "ldconfig -p | grep -q libcuda.so.1").Run() == nil {
		t.Skip("an NVIDIA driver is installed")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--device", "tpu"}, "unknown device"},
		{[]string{"--device", "cuda"}, "libcuda.so.1 (NVIDIA driver)"},
		{[]string{"--device", "cuda:1"}, "libcudart.so.13"},
		{[]string{"--precision", "fp16"}, "needs --device cuda"},
		{[]string{"--device", "cuda", "--cuda-options", "use_tf32=perhaps"}, "not a boolean"},
	} {
		cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("serve %v: %v\n%s", c.args, err, out)
		}
	}
}

// TestServeAutoFallsBackToCPU: --device auto on a machine without a GPU serves on the CPU
// after a warning naming what is missing; /health answers 200 and `infergo healthcheck` agrees.
func TestServeAutoFallsBackToCPU(t *testing.T) {
	if exec.Command("sh", "-c", "ldconfig -p | grep -q libcuda.so.1").Run() == nil {
		t.Skip("an NVIDIA driver is installed")
	}
	p := startServe(t, []string{"TASK=", "MODEL_ID=", "INFERGO_DEVICE=auto"})
	url := p.url + "/health"
	if out, err := exec.Command(binary, "healthcheck", "--url", url).CombinedOutput(); err != nil {
		t.Errorf("healthcheck: %v %s", err, out)
	}
	if out, err := exec.Command(binary, "healthcheck", "--url", p.url+"/nope-but-200").CombinedOutput(); err != nil {
		t.Errorf("healthcheck other path: %v %s", err, out)
	}
	p.stop(t)
	if s := p.out.String(); !strings.Contains(s, "running on the CPU") || !strings.Contains(s, "libcuda.so.1") {
		t.Errorf("no fallback warning in:\n%s", s)
	}
	if out, err := exec.Command(binary, "healthcheck", "--url", url, "--timeout", "500ms").CombinedOutput(); err == nil {
		t.Errorf("healthcheck of a stopped server passed: %s", out)
	}
}

// TestSessionsFlag: on the CPU the workers share one session unless --sessions says
// otherwise (-1: one per worker, memory permitting).
func TestSessionsFlag(t *testing.T) {
	eng := &engine{}
	for _, c := range []struct {
		sessions, want int
	}{
		{0, 1},
		{-1, rt.SessionsPerWorker},
		{1, 1},
		{3, 3},
	} {
		f := ModelFlags{Device: "cpu", Sessions: c.sessions, Workers: 4}
		if got := f.loadOptions(eng, nil, slog.Default()).Sessions; got != c.want {
			t.Errorf("--sessions %d: LoadOptions.Sessions %d, want %d", c.sessions, got, c.want)
		}
	}
}

// TestSoloThreadsFlag: by default the solo session has a thread per CPU on the CPU, none on
// CUDA; an explicit value is kept.
func TestSoloThreadsFlag(t *testing.T) {
	cpus := goruntime.NumCPU()
	wantCPU := cpus
	if cpus <= 1 {
		wantCPU = 1
	}
	for _, c := range []struct {
		flag, threads int
		cuda          bool
		want          int
	}{
		{0, 1, false, wantCPU},
		{0, 1, true, 1},
		{0, cpus, false, 1},
		{3, 1, false, 3},
	} {
		f := ModelFlags{SoloThreads: c.flag}
		if got := f.soloThreads(c.cuda, c.threads); got != c.want {
			t.Errorf("--solo-threads %d, threads %d, cuda %v: %d, want %d", c.flag, c.threads, c.cuda, got, c.want)
		}
	}
}
