// Command compare measures Infergo against the raw ONNX Runtime loop on the benchmark model,
// side by side in one process, over several rounds, and prints a markdown table of medians,
// every round, and ratios. Run `make bench-model` first.
//
//	go run ./bench/cmd/compare -rounds 5 -corpus short,passages
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/infergo/infergo/bench/benchmodel"
	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/tokenize"
)

func main() {
	var (
		dir      = flag.String("model", "bench/testdata/model", "benchmark model directory (make bench-model)")
		corpora  = flag.String("corpus", "short,passages", "corpora under bench/testdata, comma-separated")
		rounds   = flag.Int("rounds", 5, "rounds of one timed pass per configuration (after a warm-up pass each); the order rotates")
		workers  = flag.Int("workers", runtime.NumCPU(), "Infergo workers")
		threads  = flag.Int("threads", 1, "Infergo intra-op threads per worker")
		only     = flag.String("only", "", "run only the configurations whose name contains one of these comma-separated words")
		extra    = flag.Bool("extra", false, "also run single-request latency (1 client) and the raw batch-1 loops")
		variants = flag.Bool("variants", false, "also run the alternatives the defaults were chosen against")
		overhead = flag.String("overheads", "", "also run Infergo in process with these RunOverheadTokens values, comma-separated")
		maxBatch = flag.Int("max-batch-size", 0, "Infergo --max-batch-size (0: default)")
		grid     = flag.Bool("grid", false, "instead: time single Runs of n×L batches (the scheduler's cost model) and exit")
		raw      = flag.String("raw", "", "instead: run raw-loop variants, e.g. 'b32:1x2,b32:2x1:nospin,b1:2x2:sessions' and exit")
		ensure   = flag.Bool("ensure-model", false, "write the benchmark model first if it is missing (as make bench-model)")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *ensure {
		if _, err := benchmodel.Ensure(".", *dir); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
	if *grid || *raw != "" {
		if err := experiments(*dir, *corpora, *rounds, *grid, *raw); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*dir, *corpora, *rounds, *workers, *threads, *only, *extra, *variants, *overhead, *maxBatch); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(dir, corpora string, rounds, workers, threads int, only string, extra, variants bool, overheads string, maxBatch int) error {
	env, err := ort.NewEnvironment("")
	if err != nil {
		return err
	}
	defer env.Close()
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return err
	}
	graph := filepath.Join(dir, "onnx", "model.onnx")
	mc := harness.ModelConfig{Dir: dir, Opener: env, Workers: workers, Threads: threads}
	mc.Sched.MaxBatchSize = maxBatch
	cases := harness.StandardCases(graph, mc)
	if extra {
		cases = append(cases, harness.ExtraCases(graph, mc)...)
	}
	if variants {
		cases = append(cases, harness.VariantCases(mc)...)
	}
	for _, o := range strings.Split(overheads, ",") {
		if o == "" {
			continue
		}
		v, err := strconv.Atoi(o)
		if err != nil {
			return fmt.Errorf("-overheads: %w", err)
		}
		vc := mc
		vc.Sched.RunOverheadTokens = v
		cases = append(cases, harness.InProcessCase(fmt.Sprintf("infergo in-process c32 overhead %d", v), vc, harness.InProcessConfig{Callers: 32}))
	}
	if only != "" {
		var kept []harness.Case
		for _, c := range cases {
			for _, w := range strings.Split(only, ",") {
				if strings.Contains(c.Name, w) {
					kept = append(kept, c)
					break
				}
			}
		}
		cases = kept
	}
	fmt.Printf("# compare %s\n\nmachine: %s; ORT %s; GOMAXPROCS %d; Infergo %d workers × %d threads\n\n",
		time.Now().UTC().Format(time.RFC3339), harness.MachineInfo(), env.Version(), runtime.GOMAXPROCS(0), workers, threads)
	ctx := context.Background()
	var tables []*harness.Table
	for _, name := range strings.Split(corpora, ",") {
		c, err := harness.LoadCorpus(filepath.Join("bench", "testdata", name+".txt"), tok, 512)
		if err != nil {
			return err
		}
		t, err := harness.Compare(ctx, c, cases, rounds, os.Stdout)
		if err != nil {
			return err
		}
		tables = append(tables, t)
	}
	fmt.Println()
	var bases []string
	for _, c := range cases[:min(2, len(cases))] {
		bases = append(bases, c.Name)
	}
	for _, t := range tables {
		t.Markdown(os.Stdout, bases...)
		fmt.Println()
	}
	return nil
}
