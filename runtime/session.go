package runtime

import (
	"context"
	"errors"
)

// ValueInfo describes one graph input or output.
type ValueInfo struct {
	Name  string
	DType DType
	// Shape holds the declared dimensions; -1 marks a symbolic (dynamic) dimension.
	Shape []int64
}

// ModelInfo lists the inputs and outputs a Session binds, in the order Run takes them.
type ModelInfo struct {
	Inputs  []ValueInfo
	Outputs []ValueInfo
}

// Input returns the index of the named input, or -1.
func (m ModelInfo) Input(name string) int { return indexOf(m.Inputs, name) }

// Output returns the index of the named output, or -1.
func (m ModelInfo) Output(name string) int { return indexOf(m.Outputs, name) }

func indexOf(vs []ValueInfo, name string) int {
	for i, v := range vs {
		if v.Name == name {
			return i
		}
	}
	return -1
}

// Session runs one loaded graph. Implementations are safe for concurrent use.
type Session interface {
	// Info describes the bound inputs and outputs; it never changes after Open.
	Info() ModelInfo

	// Run executes the graph once. inputs follow Info().Inputs; outputs has one slot per
	// Info().Outputs entry. A slot whose Data is nil is filled with a newly allocated Go
	// tensor; a slot with Data set (and its Shape) is written in place.
	//
	// Run returns only after the engine has stopped touching every buffer it was given. If
	// ctx ends first, Run asks the engine to terminate, still waits for it, and returns an
	// error that wraps ctx.Err().
	Run(ctx context.Context, inputs []Tensor, outputs []Tensor) error

	// Close releases the engine's resources. It is idempotent; no Run may be in flight.
	Close() error
}

// GraphOptimization is the engine's graph optimisation level.
type GraphOptimization string

// Graph optimisation levels, from none to all.
const (
	OptimizeDisabled GraphOptimization = "disabled"
	OptimizeBasic    GraphOptimization = "basic"
	OptimizeExtended GraphOptimization = "extended"
	OptimizeAll      GraphOptimization = "all"
)

// Options configure how a graph is loaded.
type Options struct {
	// IntraOpThreads is the thread count inside one operator (0 = engine default).
	IntraOpThreads int
	// InterOpThreads is the thread count across independent operators (0 = engine default).
	InterOpThreads int
	// NoSpinning makes idle intra-op threads sleep at once instead of spinning for more work.
	// Spinning saves a wake-up when one caller owns the cores; when several batches share
	// them, a spinning thread burns a core another batch needs.
	NoSpinning bool
	// StopSpinningAfterRun lets intra-op threads spin within a run but stops them as soon as
	// the last concurrent Run returns, so an idle session's threads take no CPU from others.
	StopSpinningAfterRun bool
	// MemPattern turns on the engine's per-shape memory plans (ONNX Runtime's memory
	// pattern). Off by default: a batching server meets a new input shape with nearly every
	// batch, and ONNX Runtime keeps a plan for every shape it has seen, so memory grows
	// without bound (bench/RESULTS.md, RSS test) for no gain on shapes that rarely repeat.
	MemPattern bool
	// NoArena turns off the engine's CPU memory arena: every intermediate tensor comes from
	// the C allocator instead of one arena shared by all the session's concurrent runs.
	NoArena bool
	// Optimization is the graph optimisation level ("" = all).
	Optimization GraphOptimization
	// Outputs selects and orders the graph outputs to compute (nil = all, in graph order).
	Outputs []string
	// Provider configures the execution provider; nil runs on the CPU.
	Provider ProviderConfigurer
}

// ProviderConfigurer attaches an execution provider (CUDA, …) to an engine-specific session
// options value. The argument is the engine's own options object; implementations live with
// the engine binding (see package cuda) so that no engine type appears in this package.
type ProviderConfigurer interface {
	// Name identifies the provider in logs and /info ("cuda:0").
	Name() string
	// Configure attaches the provider. engineOptions is engine specific: runtime/ort passes
	// the raw OrtSessionOptions* of the session being created, as an unsafe.Pointer.
	Configure(engineOptions any) error
}

// Opener loads graphs from files.
type Opener interface {
	// Open loads the ONNX graph at path (absolute; external data files are resolved next to
	// it, never through the process working directory).
	Open(ctx context.Context, path string, o Options) (Session, error)
}

// ErrClosed is returned by Run on a closed session.
var ErrClosed = errors.New("runtime: session closed")
