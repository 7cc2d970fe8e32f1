// Command rss checks that `infergo serve` does not grow: after a warm-up it sends 100,000
// requests of random lengths (1–2 texts of 1 to 512 tokens, mostly short) and samples the
// server's resident set size from /proc/<pid>/status. The target: RSS at the end at most 5 %
// above RSS after the warm-up. Run `make build bench-model` first, or `make bench-rss`.
//
//	go run ./bench/cmd/rss -requests 100000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/bench/load"
)

func main() {
	var (
		bin      = flag.String("bin", "bin/infergo", "the infergo binary")
		model    = flag.String("model", "bench/testdata/model", "benchmark model directory")
		corpora  = flag.String("corpus", "bench/testdata/short.txt,bench/testdata/passages.txt", "where the words come from")
		requests = flag.Int("requests", 100_000, "requests after the warm-up")
		warmup   = flag.Int("warmup", 10_000, "warm-up requests")
		clients  = flag.Int("c", 32, "closed-loop clients")
		every    = flag.Duration("every", time.Second, "RSS sampling interval")
		csvPath  = flag.String("csv", "", "write every sample (seconds, requests phase, RSS bytes) to this file")
		serve    = flag.String("serve-args", "", "extra arguments for infergo serve, space-separated")
	)
	flag.Parse()
	if err := run(*bin, *model, *corpora, *requests, *warmup, *clients, *every, *csvPath, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

// bodies makes request i's body deterministically: 1–2 texts, each a run of corpus words
// whose length is drawn so that most texts are short queries (85 %: 1–24 words), some are
// passages (13 %: 25–120 words) and a few fill the model's 512-token window (2 %: up to
// 400 words, truncated). Every batch shape the scheduler can form turns up.
func bodies(words []string) func(i int64) ([]byte, int) {
	return func(i int64) ([]byte, int) {
		r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
		texts := make([]string, 1+r.IntN(2))
		for k := range texts {
			var n int
			switch p := r.Float64(); {
			case p < 0.85:
				n = 1 + r.IntN(24)
			case p < 0.98:
				n = 25 + r.IntN(96)
			default:
				n = 121 + r.IntN(280)
			}
			start := r.IntN(len(words))
			var b strings.Builder
			for w := 0; w < n; w++ {
				if w > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[(start+w)%len(words)])
			}
			texts[k] = b.String()
		}
		body, _ := json.Marshal(map[string]any{"inputs": texts, "truncate": true})
		return body, len(texts)
	}
}

type sample struct {
	at    time.Duration
	phase string
	rss   int64
}

func run(bin, model, corpora string, requests, warmup, clients int, every time.Duration, csvPath, serveArgs string) error {
	var words []string
	for _, path := range strings.Split(corpora, ",") {
		lines, err := load.ReadLines(path)
		if err != nil {
			return err
		}
		for _, l := range lines {
			words = append(words, strings.Fields(l)...)
		}
	}
	ctx := context.Background()
	args := append([]string{"--model", model}, strings.Fields(serveArgs)...)
	p, err := harness.StartProcess(ctx, bin, args...)
	if err != nil {
		return err
	}
	defer p.Stop()
	fmt.Printf("# rss %s\n\nmachine: %s; server: %s %s (pid %d); load average %s\n\n",
		time.Now().UTC().Format(time.RFC3339), harness.MachineInfo(), bin, strings.Join(args, " "), p.PID(), harness.LoadAverage())

	start := time.Now()
	var (
		mu      sync.Mutex
		samples []sample
		phase   = "start"
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, err := p.RSS(); err == nil {
				mu.Lock()
				samples = append(samples, sample{time.Since(start), phase, rss})
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	setPhase := func(s string) { mu.Lock(); phase = s; mu.Unlock() }
	rssNow := func() int64 { v, _ := p.RSS(); return v }

	gen := bodies(words)
	setPhase("warmup")
	wres, err := load.Run(ctx, load.Config{URL: p.URL, Concurrency: clients, Requests: warmup, Body: gen})
	if err != nil {
		return err
	}
	base := rssNow()
	fmt.Printf("## warm-up: %d requests\n%sRSS after warm-up: %.1f MB\n\n", warmup, wres.Report(), mb(base))

	setPhase("run")
	shifted := func(i int64) ([]byte, int) { return gen(i + int64(warmup)) }
	res, err := load.Run(ctx, load.Config{URL: p.URL, Concurrency: clients, Requests: requests, Body: shifted})
	if err != nil {
		return err
	}
	end := rssNow()
	close(stop)
	<-sampled
	fmt.Printf("## run: %d requests of random lengths\n%s\n", requests, res.Report())

	peak := base
	var line []string
	for i, s := range samples {
		if s.phase == "run" {
			peak = max(peak, s.rss)
		}
		if i%max(1, len(samples)/20) == 0 {
			line = append(line, fmt.Sprintf("%.0fs %s %.1f", s.at.Seconds(), s.phase, mb(s.rss)))
		}
	}
	fmt.Printf("RSS samples (MB, every %d-th of %d): %s\n", max(1, len(samples)/20), len(samples), strings.Join(line, "; "))
	growth := 100 * float64(end-base) / float64(base)
	verdict := "PASS"
	if growth > 5 || res.OK() != requests {
		verdict = "FAIL"
	}
	fmt.Printf("RSS after warm-up %.1f MB, at the end %.1f MB (%+.2f %%), peak during the run %.1f MB (%+.2f %%); %d/%d answered 200 → %s\n",
		mb(base), mb(end), growth, mb(peak), 100*float64(peak-base)/float64(base), res.OK(), requests, verdict)
	if csvPath != "" {
		var b strings.Builder
		b.WriteString("seconds,phase,rss_bytes\n")
		for _, s := range samples {
			fmt.Fprintf(&b, "%.1f,%s,%d\n", s.at.Seconds(), s.phase, s.rss)
		}
		if err := os.WriteFile(csvPath, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
