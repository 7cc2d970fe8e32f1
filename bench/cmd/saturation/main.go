// Command saturation checks how `infergo serve` behaves at twice the load it can carry:
// it measures the peak goodput with closed-loop clients, then offers 2× that rate in open
// loop (arrivals on a fixed schedule, whatever the server does) and counts the answers.
// The target: goodput (200 answers per second) at least 0.9× the peak, and nothing but 200
// and 429 — overload is refused at once, never by a timeout. Run `make build bench-model`
// first, or use `make bench-saturation`.
//
//	go run ./bench/cmd/saturation -corpus bench/testdata/short.txt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/bench/load"
)

func main() {
	var (
		bin      = flag.String("bin", "bin/infergo", "the infergo binary")
		model    = flag.String("model", "bench/testdata/model", "benchmark model directory")
		corpus   = flag.String("corpus", "bench/testdata/short.txt", "one input per line")
		peakFor  = flag.Duration("peak", 20*time.Second, "length of each closed-loop peak measurement")
		overFor  = flag.Duration("over", 30*time.Second, "length of the open-loop overload run")
		factor   = flag.Float64("factor", 2, "offered rate as a multiple of the peak")
		clients  = flag.String("clients", "32,128", "closed-loop client counts tried for the peak")
		inflight = flag.Int("max-inflight", 8192, "open loop: most requests the generator keeps in flight")
		serve    = flag.String("serve-args", "", "extra arguments for infergo serve, space-separated")
	)
	flag.Parse()
	if err := run(*bin, *model, *corpus, *peakFor, *overFor, *factor, *clients, *inflight, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "saturation:", err)
		os.Exit(1)
	}
}

func run(bin, model, corpus string, peakFor, overFor time.Duration, factor float64, clients string, inflight int, serveArgs string) error {
	texts, err := load.ReadLines(corpus)
	if err != nil {
		return err
	}
	ctx := context.Background()
	args := append([]string{"--model", model}, strings.Fields(serveArgs)...)
	p, err := harness.StartProcess(ctx, bin, args...)
	if err != nil {
		return err
	}
	defer p.Stop()
	fmt.Printf("# saturation %s\n\nmachine: %s; server: %s %s; corpus %s; load average %s\n\n",
		time.Now().UTC().Format(time.RFC3339), harness.MachineInfo(), bin, strings.Join(args, " "), corpus, harness.LoadAverage())

	// Warm up, then find the peak.
	if _, err := load.Run(ctx, load.Config{URL: p.URL, Texts: texts, Concurrency: 32, Duration: 5 * time.Second}); err != nil {
		return err
	}
	// phaseCPU starts accounting a phase; the func it returns reports what the server and this
	// generator spent since: on one machine the generator's work comes out of the server's cores.
	phaseCPU := func() func() string {
		server0, err0 := p.CPU()
		self0, t0 := harness.SelfCPU(), time.Now()
		return func() string {
			server, err := p.CPU()
			if err := errors.Join(err0, err); err != nil {
				return "CPU: " + err.Error()
			}
			wall := time.Since(t0).Seconds()
			srv, gen := (server - server0).Seconds(), (harness.SelfCPU() - self0).Seconds()
			return fmt.Sprintf("CPU: server %.1f s (%.2f cores), generator %.1f s (%.2f cores)", srv, srv/wall, gen, gen/wall)
		}
	}
	peak := 0.0
	for _, c := range strings.Split(clients, ",") {
		var n int
		if _, err := fmt.Sscan(c, &n); err != nil {
			return fmt.Errorf("-clients %q: %w", clients, err)
		}
		spent := phaseCPU()
		res, err := load.Run(ctx, load.Config{URL: p.URL, Texts: texts, Concurrency: n, Duration: peakFor})
		if err != nil {
			return err
		}
		fmt.Printf("## closed loop, %d clients, %s\n%s%s\n\n", n, peakFor, res.Report(), spent())
		peak = max(peak, res.Throughput())
	}
	rate := factor * peak
	spent := phaseCPU()
	res, err := load.Run(ctx, load.Config{URL: p.URL, Texts: texts, Concurrency: inflight, Rate: rate, Duration: overFor})
	if err != nil {
		return err
	}
	fmt.Printf("## open loop at %.1f× the peak: %.1f req/s for %s\n%s%s\n\n", factor, rate, overFor, res.Report(), spent())
	other := res.Errors
	for code, n := range res.Status {
		if code != 200 && code != 429 {
			other += n
		}
	}
	goodput := res.Throughput()
	ratio := goodput / peak
	verdict := "PASS"
	if ratio < 0.9 || other > 0 {
		verdict = "FAIL"
	}
	fmt.Printf("peak %.1f req/s; offered %.1f req/s; goodput %.1f req/s = %.3f× peak (target ≥ 0.9); "+
		"200: %d, 429: %d, other answers or errors: %d, not sent (generator cap): %d → %s\n",
		peak, rate, goodput, ratio, res.Status[200], res.Status[429], other, res.Late, verdict)
	return nil
}
