package ort

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/runtime"
)

// Session is a runtime.Session over an ONNX Runtime DynamicAdvancedSession, which is safe
// for concurrent Run calls (each call builds its own value arrays).
type Session struct {
	info runtime.ModelInfo
	path string

	mu     sync.RWMutex // held for reading by Run, for writing by Close
	sess   *ortgo.DynamicAdvancedSession
	closed bool
}

var _ runtime.Session = (*Session)(nil)

func openSession(path string, o runtime.Options) (*Session, error) {
	opts, err := sessionOptions(o)
	if err != nil {
		return nil, fmt.Errorf("ort: open %s: %w", path, err)
	}
	defer opts.Destroy()

	ins, outs, err := ortgo.GetInputOutputInfoWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("ort: read inputs/outputs of %s: %w", path, err)
	}
	info := runtime.ModelInfo{}
	for _, in := range ins {
		vi, err := valueInfo(in)
		if err != nil {
			return nil, fmt.Errorf("ort: %s: input %w", path, err)
		}
		info.Inputs = append(info.Inputs, vi)
	}
	all := make([]runtime.ValueInfo, 0, len(outs))
	for _, out := range outs {
		vi, err := valueInfo(out)
		if err != nil {
			return nil, fmt.Errorf("ort: %s: output %w", path, err)
		}
		all = append(all, vi)
	}
	if len(o.Outputs) == 0 {
		info.Outputs = all
	} else {
		for _, name := range o.Outputs {
			i := (runtime.ModelInfo{Outputs: all}).Output(name)
			if i < 0 {
				return nil, fmt.Errorf("ort: %s has no output %q", path, name)
			}
			info.Outputs = append(info.Outputs, all[i])
		}
	}

	inNames := make([]string, len(info.Inputs))
	for i, v := range info.Inputs {
		inNames[i] = v.Name
	}
	outNames := make([]string, len(info.Outputs))
	for i, v := range info.Outputs {
		outNames[i] = v.Name
	}
	sess, err := ortgo.NewDynamicAdvancedSession(path, inNames, outNames, opts)
	if err != nil {
		return nil, fmt.Errorf("ort: create session for %s: %w", path, err)
	}
	return &Session{info: info, path: path, sess: sess}, nil
}

func sessionOptions(o runtime.Options) (*ortgo.SessionOptions, error) {
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (*ortgo.SessionOptions, error) {
		opts.Destroy()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if o.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
			return fail("intra-op threads", err)
		}
	}
	if o.InterOpThreads > 0 {
		if err := opts.SetInterOpNumThreads(o.InterOpThreads); err != nil {
			return fail("inter-op threads", err)
		}
	}
	if err := opts.SetMemPattern(o.MemPattern); err != nil {
		return fail("memory pattern", err)
	}
	if o.NoArena {
		if err := opts.SetCpuMemArena(false); err != nil {
			return fail("CPU memory arena", err)
		}
	}
	if o.StopSpinningAfterRun {
		if err := opts.AddSessionConfigEntry("session.force_spinning_stop", "1"); err != nil {
			return fail("spinning stop", err)
		}
	}
	if o.NoSpinning {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return fail("intra-op spinning", err)
		}
	}
	level, err := optimizationLevel(o.Optimization)
	if err != nil {
		return fail("graph optimisation", err)
	}
	if err := opts.SetGraphOptimizationLevel(level); err != nil {
		return fail("graph optimisation", err)
	}
	if o.Provider != nil {
		if err := o.Provider.Configure(rawOptions(opts)); err != nil {
			return fail("execution provider "+o.Provider.Name(), err)
		}
	}
	return opts, nil
}

// rawOptions returns the OrtSessionOptions* inside opts, which is what providers configured
// through the C API (package cuda) need. onnxruntime_go keeps it as the only, unexported
// field of SessionOptions: that layout is pinned with the module version (v1.27.0 in go.mod),
// checked at compile time below, and TestRawSessionOptions proves the pointer by writing a
// config entry through it and reading it back with onnxruntime_go.
func rawOptions(opts *ortgo.SessionOptions) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(opts))
}

// SessionOptions must be exactly one pointer wide (both array lengths must be non-negative).
var (
	_ [unsafe.Sizeof(ortgo.SessionOptions{}) - unsafe.Sizeof(unsafe.Pointer(nil))]byte
	_ [unsafe.Sizeof(unsafe.Pointer(nil)) - unsafe.Sizeof(ortgo.SessionOptions{})]byte
)

func optimizationLevel(g runtime.GraphOptimization) (ortgo.GraphOptimizationLevel, error) {
	switch g {
	case "", runtime.OptimizeAll:
		return ortgo.GraphOptimizationLevelEnableAll, nil
	case runtime.OptimizeExtended:
		return ortgo.GraphOptimizationLevelEnableExtended, nil
	case runtime.OptimizeBasic:
		return ortgo.GraphOptimizationLevelEnableBasic, nil
	case runtime.OptimizeDisabled:
		return ortgo.GraphOptimizationLevelDisableAll, nil
	}
	return 0, fmt.Errorf("unknown level %q (want disabled, basic, extended or all)", g)
}

// Info implements runtime.Session.
func (s *Session) Info() runtime.ModelInfo { return s.info }

// Path returns the absolute path of the loaded graph.
func (s *Session) Path() string { return s.path }

// Run implements runtime.Session. Cancellation goes through RunOptions.Terminate, and Run
// waits for ONNX Runtime to return before it releases any tensor it handed over.
func (s *Session) Run(ctx context.Context, inputs []runtime.Tensor, outputs []runtime.Tensor) error {
	if len(inputs) != len(s.info.Inputs) {
		return fmt.Errorf("ort: run: got %d inputs, session binds %d", len(inputs), len(s.info.Inputs))
	}
	if len(outputs) != len(s.info.Outputs) {
		return fmt.Errorf("ort: run: got %d output slots, session binds %d", len(outputs), len(s.info.Outputs))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ort: run: %w", err)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.ErrClosed
	}

	values := make([]ortgo.Value, 0, len(inputs)+len(outputs))
	defer func() {
		for _, v := range values {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	in := make([]ortgo.Value, len(inputs))
	for i, t := range inputs {
		v, err := toValue(t)
		if err != nil {
			return fmt.Errorf("ort: run: input %q: %w", s.info.Inputs[i].Name, err)
		}
		in[i] = v
		values = append(values, v)
	}
	out := make([]ortgo.Value, len(outputs))
	for i, t := range outputs {
		if t.Data == nil {
			continue // ONNX Runtime allocates it; see below.
		}
		v, err := toValue(t)
		if err != nil {
			return fmt.Errorf("ort: run: output %q: %w", s.info.Outputs[i].Name, err)
		}
		out[i] = v
		values = append(values, v)
	}
	preallocated := make([]bool, len(out))
	for i, v := range out {
		preallocated[i] = v != nil
	}

	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return fmt.Errorf("ort: run options: %w", err)
	}
	defer ro.Destroy()
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(terminated)
		ro.Terminate()
	})
	runErr := s.sess.RunWithOptions(in, out, ro)
	if !stop() {
		<-terminated // Terminate is running or ran; let it finish before ro is destroyed.
	}
	// Outputs ONNX Runtime allocated were copied into Go memory by onnxruntime_go; their
	// wrappers still hold an OrtValue that must be released.
	for i, v := range out {
		if !preallocated[i] && v != nil {
			values = append(values, v)
		}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ort: run terminated: %w", ctx.Err())
		}
		return fmt.Errorf("ort: run %s: %w", s.path, runErr)
	}
	for i, v := range out {
		if preallocated[i] {
			continue
		}
		t, err := fromValue(v)
		if err != nil {
			return fmt.Errorf("ort: run: output %q: %w", s.info.Outputs[i].Name, err)
		}
		outputs[i] = t
	}
	return nil
}

// Close implements runtime.Session. It waits for in-flight Run calls.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.sess.Destroy(); err != nil {
		return fmt.Errorf("ort: close %s: %w", s.path, err)
	}
	return nil
}

var errUnsupportedDType = errors.New("unsupported element type")
