package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/infergo/infergo/bench/load"
)

// Case is one configuration of a comparison: it measures a corpus and returns its passes.
type Case struct {
	Name string
	Run  func(ctx context.Context, c *Corpus) ([]Pass, error)
	// Batches, when set, counts the scheduler's batches during the run (Infergo cases).
	Batches *BatchCounter
}

// RawCase measures the raw loop.
func RawCase(graph string, cfg RawConfig, passes int) Case {
	cfg.Graph, cfg.Passes = graph, passes
	return Case{Name: cfg.Label(), Run: func(_ context.Context, c *Corpus) ([]Pass, error) { return RunRaw(cfg, c) }}
}

// InProcessCase loads the model with mc and drives the pipeline with cfg.
func InProcessCase(name string, mc ModelConfig, cfg InProcessConfig) Case {
	cs := Case{Name: name, Batches: &BatchCounter{}}
	mc.Sched.Observer = cs.Batches
	cs.Run = func(ctx context.Context, c *Corpus) ([]Pass, error) {
		m, err := mc.Load(ctx)
		if err != nil {
			return nil, err
		}
		defer m.Close(context.Background())
		cs.Batches.Reset()
		return RunInProcess(ctx, m, cfg, c)
	}
	return cs
}

// HTTPCase loads the model with mc, serves it on loopback and drives it with cfg.
func HTTPCase(name string, mc ModelConfig, cfg HTTPConfig) Case {
	cs := Case{Name: name, Batches: &BatchCounter{}}
	mc.Sched.Observer = cs.Batches
	cs.Run = func(ctx context.Context, c *Corpus) ([]Pass, error) {
		m, err := mc.Load(ctx)
		if err != nil {
			return nil, err
		}
		s, err := StartServer(m)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		cs.Batches.Reset()
		return RunHTTP(ctx, s.URL, cfg, c)
	}
	return cs
}

// NoBatching returns mc with one sequence per model run.
func NoBatching(mc ModelConfig) ModelConfig {
	mc.Sched.MaxBatchSize = 1
	return mc
}

// Round is one configuration's result in one round.
type Round struct {
	SeqPerSec float64
	P50       time.Duration
	Passes    []Pass
}

// Table holds every round of every case for one corpus.
type Table struct {
	Corpus string
	Cases  []string
	Rounds map[string][]Round
	Loads  []string // load average before each round
}

// Compare runs every case on c, rounds times, rotating the order each round so that drift
// of the machine does not favour one case. progress (may be nil) gets a line per run.
func Compare(ctx context.Context, c *Corpus, cases []Case, rounds int, progress io.Writer) (*Table, error) {
	t := &Table{Corpus: c.Name, Rounds: map[string][]Round{}}
	for _, cs := range cases {
		t.Cases = append(t.Cases, cs.Name)
	}
	if progress == nil {
		progress = io.Discard
	}
	for r := 0; r < rounds; r++ {
		t.Loads = append(t.Loads, LoadAverage())
		for k := range cases {
			cs := cases[(k+r)%len(cases)]
			passes, err := cs.Run(ctx, c)
			if err != nil {
				return t, fmt.Errorf("%s on %s: %w", cs.Name, c.Name, err)
			}
			tp, p50 := MedianPass(passes)
			t.Rounds[cs.Name] = append(t.Rounds[cs.Name], Round{SeqPerSec: tp, P50: p50, Passes: passes})
			fmt.Fprintf(progress, "round %d %-8s %-28s %8.1f seq/s  p50 %7.2f ms  passes %s  load %s\n",
				r+1, c.Name, cs.Name, tp, ms(p50), passString(passes), LoadAverage())
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

// Markdown writes the table: one row per case with the median, every round and the ratio
// to the base case.
func (t *Table) Markdown(w io.Writer, base string) {
	bt, _ := t.Median(base)
	fmt.Fprintf(w, "| corpus | configuration | median seq/s | rounds seq/s | ratio vs %s | p50 ms (median) |\n|---|---|---|---|---|---|\n", base)
	for _, name := range t.Cases {
		tp, p50 := t.Median(name)
		var rs []string
		for _, r := range t.Rounds[name] {
			rs = append(rs, fmt.Sprintf("%.1f", r.SeqPerSec))
		}
		ratio := "–"
		if bt > 0 {
			ratio = fmt.Sprintf("%.2f", tp/bt)
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %s | %s | %.2f |\n", t.Corpus, name, tp, strings.Join(rs, " / "), ratio, ms(p50))
	}
	fmt.Fprintf(w, "\nLoad average before each round: %s\n", strings.Join(t.Loads, "; "))
}

func passString(ps []Pass) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%.1f", p.SeqPerSec()))
	}
	return strings.Join(s, "/")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
// headline) and as Infergo's own workers × threads; (b) Infergo in process; (c) Infergo
// over HTTP with 32 clients; (d) the same server without batching.
func StandardCases(graph string, mc ModelConfig, passes int) []Case {
	workers, threads := max(mc.Workers, 1), max(mc.Threads, 1)
	cores := workers * threads
	return []Case{
		RawCase(graph, RawConfig{Batch: 32, Sorted: true, Threads: cores, Callers: 1}, passes),
		RawCase(graph, RawConfig{Batch: 32, Sorted: true, Threads: threads, Callers: workers}, passes),
		InProcessCase("infergo in-process c32", mc, InProcessConfig{Callers: 32, Passes: passes}),
		HTTPCase("infergo http c32", mc, HTTPConfig{Clients: 32, Passes: passes, Route: load.RouteTEI}),
		HTTPCase("infergo http c32 no-batching", NoBatching(mc), HTTPConfig{Clients: 32, Passes: passes, Route: load.RouteTEI}),
	}
}

// ExtraCases measure single-request latency and the batch-1 ceiling: the raw loop at batch 1
// with one caller (both thread settings) and with Infergo's workers as callers, and Infergo
// over HTTP with one client.
func ExtraCases(graph string, mc ModelConfig, passes int) []Case {
	workers, threads := max(mc.Workers, 1), max(mc.Threads, 1)
	cores := workers * threads
	return []Case{
		RawCase(graph, RawConfig{Batch: 1, Threads: cores, Callers: 1}, passes),
		RawCase(graph, RawConfig{Batch: 1, Threads: threads, Callers: 1}, passes),
		RawCase(graph, RawConfig{Batch: 1, Threads: threads, Callers: workers}, passes),
		HTTPCase("infergo http c1", mc, HTTPConfig{Clients: 1, Passes: passes, Route: load.RouteTEI}),
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

// VariantCases are the alternatives the defaults were chosen against, over HTTP with 32
// clients: batching without the planner's padding splits (one batch takes all that fits, as
// before), and each worker running with every core's threads on one shared session without
// spinning, so that a lone request gets all the cores.
func VariantCases(mc ModelConfig, passes int) []Case {
	greedy := mc
	greedy.Sched.RunOverheadTokens = -1
	wide := mc
	wide.Threads, wide.Sessions = max(mc.Workers, 1)*max(mc.Threads, 1), 1
	wide.Runtime.NoSpinning = true
	cfg := HTTPConfig{Clients: 32, Passes: passes, Route: load.RouteTEI}
	one := HTTPConfig{Clients: 1, Passes: passes, Route: load.RouteTEI}
	return []Case{
		HTTPCase("infergo http c32 greedy", greedy, cfg),
		HTTPCase("infergo http c32 wide-nospin", wide, cfg),
		HTTPCase("infergo http c1 wide-nospin", wide, one),
	}
}
