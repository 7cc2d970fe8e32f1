package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	"github.com/infergo/infergo/bench/load"
	"github.com/infergo/infergo/runtime"
)

// Case is one configuration of a comparison: Open prepares a Runner over a corpus (loading
// the model, starting the server) that then makes passes on demand.
type Case struct {
	Name string
	Open func(ctx context.Context, c *Corpus) (Runner, error)
	// Batches, when set, counts the scheduler's batches (Infergo cases).
	Batches *BatchCounter
}

// RawCase measures the raw loop.
func RawCase(graph string, cfg RawConfig) Case {
	cfg.Graph = graph
	return Case{Name: cfg.Label(), Open: func(_ context.Context, c *Corpus) (Runner, error) { return NewRawRunner(cfg, c) }}
}

// closer adds a cleanup to a Runner.
type closer struct {
	Runner
	close func() error
}

func (c closer) Close() error { return errors.Join(c.Runner.Close(), c.close()) }

// InProcessCase loads the model with mc and drives the pipeline with cfg.
func InProcessCase(name string, mc ModelConfig, cfg InProcessConfig) Case {
	cs := Case{Name: name, Batches: &BatchCounter{}}
	mc.Sched.Observer = cs.Batches
	cs.Open = func(ctx context.Context, c *Corpus) (Runner, error) {
		m, err := mc.Load(ctx)
		if err != nil {
			return nil, err
		}
		r, err := NewInProcessRunner(m, cfg, c)
		if err != nil {
			m.Close(ctx)
			return nil, err
		}
		return closer{r, func() error { return m.Close(context.Background()) }}, nil
	}
	return cs
}

// HTTPCase loads the model with mc, serves it on loopback and drives it with cfg.
func HTTPCase(name string, mc ModelConfig, cfg HTTPConfig) Case {
	cs := Case{Name: name, Batches: &BatchCounter{}}
	mc.Sched.Observer = cs.Batches
	cs.Open = func(ctx context.Context, c *Corpus) (Runner, error) {
		m, err := mc.Load(ctx)
		if err != nil {
			return nil, err
		}
		s, err := StartServer(m)
		if err != nil {
			return nil, err
		}
		return closer{NewHTTPRunner(s.URL, cfg, c), s.Close}, nil
	}
	return cs
}

// NoBatching returns mc with one sequence per model run.
func NoBatching(mc ModelConfig) ModelConfig {
	mc.Sched.MaxBatchSize = 1
	return mc
}

// Round is one configuration's pass in one round.
type Round struct {
	SeqPerSec float64
	P50       time.Duration
	// CPU is the process's CPU time (user + system) during the pass, per sequence: the
	// work a configuration costs, which other load on the machine disturbs less than
	// wall-clock throughput. It includes the load generator of HTTP cases.
	CPU  time.Duration
	Load string
}

// Table holds every round of every case for one corpus.
type Table struct {
	Corpus string
	Cases  []string
	Rounds map[string][]Round
}

// Compare opens every case on c and makes a warm-up pass with each, then makes rounds
// rounds of one pass per case, rotating the order each round. Interleaving single passes
// lets every case see the same machine: this VM drifts, and other work shares it, on a
// scale of seconds to minutes. progress (may be nil) gets a line per pass.
func Compare(ctx context.Context, c *Corpus, cases []Case, rounds int, progress io.Writer) (*Table, error) {
	t := &Table{Corpus: c.Name, Rounds: map[string][]Round{}}
	if progress == nil {
		progress = io.Discard
	}
	runners := make([]Runner, len(cases))
	defer func() {
		for _, r := range runners {
			if r != nil {
				r.Close()
			}
		}
	}()
	for i, cs := range cases {
		t.Cases = append(t.Cases, cs.Name)
		r, err := cs.Open(ctx, c)
		if err != nil {
			return t, fmt.Errorf("%s on %s: %w", cs.Name, c.Name, err)
		}
		runners[i] = r
		if _, err := r.Pass(ctx); err != nil { // warm-up
			return t, fmt.Errorf("%s on %s: warm-up: %w", cs.Name, c.Name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for k := range cases {
			i := (k + r) % len(cases)
			cs := cases[i]
			if cs.Batches != nil {
				cs.Batches.Reset()
			}
			load := LoadAverage()
			cpu0 := cpuTime()
			p, err := runners[i].Pass(ctx)
			if err != nil {
				return t, fmt.Errorf("%s on %s: %w", cs.Name, c.Name, err)
			}
			cpu := (cpuTime() - cpu0) / time.Duration(max(p.Seqs, 1))
			t.Rounds[cs.Name] = append(t.Rounds[cs.Name], Round{SeqPerSec: p.SeqPerSec(), P50: p.P50(), CPU: cpu, Load: load})
			fmt.Fprintf(progress, "round %d %-8s %-32s %8.1f seq/s  p50 %8.2f ms  cpu %6.3f ms/seq  load %s\n",
				r+1, c.Name, cs.Name, p.SeqPerSec(), ms(p.P50()), ms(cpu), load)
			if cs.Batches != nil {
				fmt.Fprintf(progress, "        %s\n", cs.Batches)
			}
		}
	}
	return t, nil
}

// Median returns the case's median throughput and p50 over rounds.
func (t *Table) Median(name string) (float64, time.Duration) {
	var tp, lat []float64
	for _, r := range t.Rounds[name] {
		tp = append(tp, r.SeqPerSec)
		lat = append(lat, float64(r.P50))
	}
	return Median(tp), time.Duration(Median(lat))
}

// Ratio returns the median over rounds of name's throughput divided by base's in the same
// round: the comparison least disturbed by the machine's drift.
func (t *Table) Ratio(name, base string) float64 {
	var rs []float64
	for i, r := range t.Rounds[name] {
		if i < len(t.Rounds[base]) && t.Rounds[base][i].SeqPerSec > 0 {
			rs = append(rs, r.SeqPerSec/t.Rounds[base][i].SeqPerSec)
		}
	}
	return Median(rs)
}

// Markdown writes the table: one row per case with the median, every round, the median
// per-round ratio to each base, the median p50 and CPU per sequence.
func (t *Table) Markdown(w io.Writer, bases ...string) {
	fmt.Fprintf(w, "| corpus | configuration | median seq/s | every round seq/s |")
	for _, b := range bases {
		fmt.Fprintf(w, " ratio vs %s |", b)
	}
	fmt.Fprintf(w, " p50 ms | CPU ms/seq |\n|---|---|---|---|%s---|---|\n", strings.Repeat("---|", len(bases)))
	for _, name := range t.Cases {
		tp, p50 := t.Median(name)
		var rs []string
		var cpus []float64
		for _, r := range t.Rounds[name] {
			rs = append(rs, fmt.Sprintf("%.1f", r.SeqPerSec))
			cpus = append(cpus, ms(r.CPU))
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %s |", t.Corpus, name, tp, strings.Join(rs, " / "))
		for _, b := range bases {
			fmt.Fprintf(w, " %.2f |", t.Ratio(name, b))
		}
		fmt.Fprintf(w, " %.2f | %.3f |\n", ms(p50), Median(cpus))
	}
	var loads []string
	if len(t.Cases) > 0 {
		for _, r := range t.Rounds[t.Cases[0]] {
			loads = append(loads, r.Load)
		}
	}
	fmt.Fprintf(w, "\nLoad average at each round's first pass: %s\n", strings.Join(loads, "; "))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTime returns the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAverage returns the 1-, 5- and 15-minute load averages from /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// StandardCases are the configurations of the comparison for a machine where
// Infergo runs mc: (a) the raw loop at batch 32, both as one caller × all threads (the peers'
// headline) and as Infergo's own workers × threads, over the corpus sorted by length (nearly no
// padding: a bound no online server can reach) and, for the latter, in corpus order; (b) Infergo in process; (c) Infergo
// over HTTP with 32 clients; (d) the same server without batching.
func StandardCases(graph string, mc ModelConfig) []Case {
	workers, threads := max(mc.Workers, 1), max(mc.Threads, 1)
	cores := workers * threads
	return []Case{
		RawCase(graph, RawConfig{Batch: 32, Sorted: true, Threads: cores, Callers: 1}),
		RawCase(graph, RawConfig{Batch: 32, Sorted: true, Threads: threads, Callers: workers}),
		// In corpus order, as a client batching its own stream would see it.
		RawCase(graph, RawConfig{Batch: 32, Threads: threads, Callers: workers}),
		InProcessCase("infergo in-process c32", mc, InProcessConfig{Callers: 32}),
		HTTPCase("infergo http c32", mc, HTTPConfig{Clients: 32, Route: load.RouteTEI}),
		HTTPCase("infergo http c32 no-batching", NoBatching(mc), HTTPConfig{Clients: 32, Route: load.RouteTEI}),
	}
}

// ExtraCases measure single-request latency and the batch-1 ceiling: the raw loop at batch 1
// with one caller (both thread settings) and with Infergo's workers as callers, and Infergo
// over HTTP with one client.
func ExtraCases(graph string, mc ModelConfig) []Case {
	workers, threads := max(mc.Workers, 1), max(mc.Threads, 1)
	cores := workers * threads
	return []Case{
		RawCase(graph, RawConfig{Batch: 1, Threads: cores, Callers: 1}),
		RawCase(graph, RawConfig{Batch: 1, Threads: threads, Callers: 1}),
		RawCase(graph, RawConfig{Batch: 1, Threads: threads, Callers: workers}),
		HTTPCase("infergo http c1", mc, HTTPConfig{Clients: 1, Route: load.RouteTEI}),
	}
}

// MachineInfo describes the machine: CPU count, CPU model and kernel.
func MachineInfo() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("nproc %d, %s, kernel %s", goruntime.NumCPU(), model, kernel)
}

// VariantCases are the alternatives the defaults were chosen against: no solo session for
// lone batches (over HTTP, 32 clients, 4 and 1); a session per worker instead of one shared
// (in process, over HTTP with 32 clients and with one);
// ONNX Runtime's memory pattern left on (in process); then over HTTP with 32 clients, batching without the
// planner's padding splits (one batch takes all that fits, as before), and each worker
// running with every core's threads on one shared session without spinning, so that a lone
// request gets all the cores.
func VariantCases(mc ModelConfig) []Case {
	greedy := mc
	greedy.Sched.RunOverheadTokens = -1
	wide := mc
	wide.Threads, wide.Sessions = max(mc.Workers, 1)*max(mc.Threads, 1), 1
	wide.Runtime.NoSpinning = true
	cfg := HTTPConfig{Clients: 32, Route: load.RouteTEI}
	one := HTTPConfig{Clients: 1, Route: load.RouteTEI}
	few := HTTPConfig{Clients: 4, Route: load.RouteTEI}
	pattern := mc
	pattern.Runtime.MemPattern = true
	perWorker := mc
	perWorker.Sessions = runtime.SessionsPerWorker
	noSolo := mc
	noSolo.SoloThreads = 1
	return []Case{
		HTTPCase("infergo http c32 no-solo", noSolo, cfg),
		HTTPCase("infergo http c1 no-solo", noSolo, one),
		HTTPCase("infergo http c4", mc, few),
		HTTPCase("infergo http c4 no-solo", noSolo, few),
		InProcessCase("infergo in-process c32 session-per-worker", perWorker, InProcessConfig{Callers: 32}),
		HTTPCase("infergo http c32 session-per-worker", perWorker, cfg),
		HTTPCase("infergo http c1 session-per-worker", perWorker, one),
		InProcessCase("infergo in-process c32 mem-pattern", pattern, InProcessConfig{Callers: 32}),
		HTTPCase("infergo http c1 mem-pattern", pattern, one),
		HTTPCase("infergo http c32 greedy", greedy, cfg),
		HTTPCase("infergo http c32 wide-nospin", wide, cfg),
		HTTPCase("infergo http c1 wide-nospin", wide, one),
	}
}
