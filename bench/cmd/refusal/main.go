// Command refusal measures what a 429 costs a server on this machine, side by side: the same
// open-loop load (bench/load) against `infergo serve` admitting one request at a time (so
// nearly every answer is a 429) and against a bare fasthttp server that answers every request
// with the same 429, nothing else. Each server's CPU comes from /proc; the bare server is the
// floor any HTTP server pays here per refused request (kernel, network stack, fasthttp), so
// the difference is Infergo's own share. Run `make build bench-model` first.
//
//	go run ./bench/cmd/refusal -rate 2000 -d 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/bench/load"
)

func main() {
	// harness.StartProcess runs "<bin> serve --addr A ...": as that child, this command is
	// the bare server.
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "refusal: bare server:", err)
			os.Exit(1)
		}
		return
	}
	var (
		bin     = flag.String("bin", "bin/infergo", "the infergo binary")
		model   = flag.String("model", "bench/testdata/model", "benchmark model directory")
		corpus  = flag.String("corpus", "bench/testdata/short.txt", "one input per line")
		rate    = flag.Float64("rate", 2000, "offered requests per second (open loop)")
		clients = flag.Int("c", 256, "most requests in flight")
		dur     = flag.Duration("d", 10*time.Second, "length of each measurement")
		rounds  = flag.Int("rounds", 2, "rounds; each measures both servers")
	)
	flag.Parse()
	if err := run(*bin, *model, *corpus, *rate, *clients, *dur, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "refusal:", err)
		os.Exit(1)
	}
}

func run(bin, model, corpus string, rate float64, clients int, dur time.Duration, rounds int) error {
	texts, err := load.ReadLines(corpus)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	servers := []struct {
		name string
		bin  string
		args []string
	}{
		{"infergo serve, 1 admitted", bin, []string{"--model", model, "--max-concurrent-requests", "1", "--workers", "1"}},
		{"bare fasthttp 429", self, nil},
	}
	fmt.Printf("# refusal cost %s\n\nmachine: %s; corpus %s; open loop %.0f req/s, %d in flight, %s per measurement; load average %s\n\n",
		time.Now().UTC().Format(time.RFC3339), harness.MachineInfo(), corpus, rate, clients, dur, harness.LoadAverage())
	for round := 1; round <= rounds; round++ {
		for _, s := range servers {
			line, err := measure(ctx, s.bin, s.args, texts, rate, clients, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Printf("round %d  %-26s %s\n", round, s.name, line)
		}
	}
	return nil
}

// measure starts one server, warms it up with a short closed loop, then offers the open-loop
// load and reports the answers and the server's CPU per answer.
func measure(ctx context.Context, bin string, args []string, texts []string, rate float64, clients int, dur time.Duration) (string, error) {
	p, err := harness.StartProcess(ctx, bin, args...)
	if err != nil {
		return "", err
	}
	defer p.Stop()
	if _, err := load.Run(ctx, load.Config{URL: p.URL, Texts: texts, Concurrency: 8, Duration: 2 * time.Second}); err != nil {
		return "", err
	}
	cpu0, err0 := p.CPU()
	self0 := harness.SelfCPU()
	res, err := load.Run(ctx, load.Config{URL: p.URL, Texts: texts, Concurrency: clients, Rate: rate, Duration: dur})
	if err != nil {
		return "", err
	}
	cpu1, err1 := p.CPU()
	if err := errors.Join(err0, err1); err != nil {
		return "", err
	}
	server := (cpu1 - cpu0).Seconds()
	gen := (harness.SelfCPU() - self0).Seconds()
	answers := 0
	for _, n := range res.Status {
		answers += n
	}
	if answers == 0 {
		return "", errors.New("no answers")
	}
	return fmt.Sprintf("200: %6d  429: %6d  errors: %d  server %.2f cores, %.3f CPU-ms per answer; generator %.2f cores; 429 p50 %.2f ms",
		res.Status[200], res.Status[429], res.Errors, server/res.Elapsed.Seconds(), 1000*server/float64(answers),
		gen/res.Elapsed.Seconds(), float64(res.RejectionPercentile(50))/1e6), nil
}

// serveBare answers /health with 200 and everything else with Infergo's 429 (status,
// Retry-After, JSON body), using the fasthttp server settings Infergo uses.
func serveBare(args []string) error {
	addr := ""
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--addr" {
			addr = args[i+1]
		}
	}
	if addr == "" {
		return errors.New("no --addr")
	}
	body := []byte(`{"error":"sched: overloaded: too many concurrent requests","error_type":"overloaded"}`)
	srv := &fasthttp.Server{
		Name:                 "bare",
		NoDefaultContentType: true,
		ReadTimeout:          60 * time.Second,
		WriteTimeout:         60 * time.Second,
		Handler: func(rc *fasthttp.RequestCtx) {
			if strings.HasSuffix(string(rc.Path()), "/health") {
				rc.SetStatusCode(fasthttp.StatusOK)
				return
			}
			rc.SetStatusCode(fasthttp.StatusTooManyRequests)
			rc.Response.Header.Set("Retry-After", "1")
			rc.SetContentType("application/json")
			rc.SetBody(body)
		},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Shutdown()
	}()
	return srv.Serve(ln)
}
