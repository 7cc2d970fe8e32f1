package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/infergo/infergo/bench/load"
)

// BenchCmd is the load generator: closed loop (N clients back to back) or open loop (a fixed
// arrival rate, latency counted from each request's scheduled start).
type BenchCmd struct {
	URL         string        `default:"http://127.0.0.1:8000" help:"Server base URL."`
	Route       string        `default:"embed" enum:"embed,aic,openai" help:"Request shape: TEI /embed, api-inference-community POST /, or OpenAI /v1/embeddings."`
	Corpus      string        `required:"" type:"existingfile" help:"Text file, one input per line."`
	Batch       int           `default:"1" help:"Texts per request."`
	Concurrency int           `default:"32" short:"c" help:"Closed-loop clients, or the open-loop cap on requests in flight."`
	Rate        float64       `help:"Open loop: requests per second (0 = closed loop)."`
	Duration    time.Duration `default:"10s" short:"d" help:"Run length."`
	Requests    int           `help:"Stop after this many requests (0 = duration only)."`
	Timeout     time.Duration `default:"60s" help:"Per-request timeout."`
}

// Run implements the command.
func (c *BenchCmd) Run() error {
	texts, err := load.ReadLines(c.Corpus)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, load.Config{
		URL: c.URL, Route: load.Route(c.Route), Texts: texts, Batch: c.Batch,
		Concurrency: c.Concurrency, Rate: c.Rate, Duration: c.Duration, Requests: c.Requests, Timeout: c.Timeout,
	})
	if err != nil {
		return err
	}
	fmt.Print(res.Report())
	return nil
}
