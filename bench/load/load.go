// Package load drives an Infergo (or any compatible) HTTP server with a corpus of texts and
// measures throughput and latency. Closed loop: N clients each send the next request as soon
// as the previous answer arrives. Open loop: requests leave on a fixed schedule whatever the
// server does, and each latency counts from its scheduled start, so a slow server cannot hide
// its queueing (no coordinated omission).
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Route picks the request body shape.
type Route string

// Supported routes.
const (
	RouteTEI    Route = "embed"  // POST /embed {"inputs": …}
	RouteAIC    Route = "aic"    // POST / {"inputs": …}
	RouteOpenAI Route = "openai" // POST /v1/embeddings {"input": …}
)

// Config describes one load run.
type Config struct {
	// URL is the server's base URL (http://host:port); the route's path is appended.
	URL   string
	Route Route
	// Texts are sent round-robin; Batch texts per request.
	Texts []string
	Batch int
	// Concurrency is the number of closed-loop clients, or the cap on requests in flight in
	// open loop (a request due while the cap is reached counts as Late and is not sent).
	Concurrency int
	// Rate, when > 0, selects open loop at this many requests per second.
	Rate float64
	// Duration bounds the run; Requests, when > 0, bounds it too.
	Duration time.Duration
	Requests int
	// Timeout bounds each request (default 60 s).
	Timeout time.Duration
	// Body, when set, replaces Texts and Batch: it returns request i's body and how many
	// inputs it carries. It is called from many goroutines at once.
	Body func(i int64) (body []byte, inputs int)
}

// Result summarises a run.
type Result struct {
	Mode      string
	Elapsed   time.Duration
	Sent      int
	Late      int // open loop: due requests not sent because Concurrency were in flight
	Status    map[int]int
	Errors    int // transport errors (no HTTP status)
	Sequences int // texts in successful (200) requests
	Latencies []time.Duration
	// Rejections are the latencies of 429 answers: admission control must answer at once.
	Rejections  []time.Duration
	FirstErrors []string
}

// OK returns the number of 200 answers.
func (r *Result) OK() int { return r.Status[200] }

// Throughput returns successful requests per second.
func (r *Result) Throughput() float64 { return float64(r.OK()) / r.Elapsed.Seconds() }

// SeqThroughput returns successfully embedded texts per second.
func (r *Result) SeqThroughput() float64 { return float64(r.Sequences) / r.Elapsed.Seconds() }

// Percentile returns the p-th percentile (0–100) of successful request latencies.
func (r *Result) Percentile(p float64) time.Duration { return percentile(r.Latencies, p) }

// RejectionPercentile returns the p-th percentile (0–100) of the 429 answers' latencies.
func (r *Result) RejectionPercentile(p float64) time.Duration { return percentile(r.Rejections, p) }

// percentile returns the p-th percentile (0–100) of sorted (nearest rank; 0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Run executes the load described by c.
func Run(ctx context.Context, c Config) (*Result, error) {
	if len(c.Texts) == 0 && c.Body == nil {
		return nil, errors.New("load: no texts")
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		return nil, errors.New("load: set a duration or a request count")
	}
	path, err := routePath(c.Route)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(c.URL, "/") + path
	next := c.Body
	if next == nil {
		bodies := makeBodies(c)
		next = func(i int64) ([]byte, int) { return bodies[i%int64(len(bodies))], batchLen(c, i) }
	}
	client := &fasthttp.Client{MaxConnsPerHost: c.Concurrency + 16, ReadTimeout: c.Timeout, WriteTimeout: c.Timeout}

	if c.Duration > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	rec := &recorder{status: map[int]int{}}
	start := time.Now()
	mode := "closed"
	if c.Rate > 0 {
		mode = "open"
		openLoop(ctx, c, client, url, next, rec)
	} else {
		closedLoop(ctx, c, client, url, next, rec)
	}
	res := rec.result(time.Since(start))
	res.Mode = mode
	return res, nil
}

func routePath(r Route) (string, error) {
	switch r {
	case RouteTEI, "":
		return "/embed", nil
	case RouteAIC:
		return "/", nil
	case RouteOpenAI:
		return "/v1/embeddings", nil
	}
	return "", fmt.Errorf("load: unknown route %q (want embed, aic or openai)", r)
}

// makeBodies pre-encodes one body per batch of the corpus, so the client spends no time on
// JSON while measuring.
func makeBodies(c Config) [][]byte {
	var bodies [][]byte
	for i := 0; i < len(c.Texts); i += c.Batch {
		batch := c.Texts[i:min(i+c.Batch, len(c.Texts))]
		var v any = batch
		if c.Batch == 1 {
			v = batch[0]
		}
		key := "inputs"
		if c.Route == RouteOpenAI {
			key = "input"
		}
		b, _ := json.Marshal(map[string]any{key: v})
		bodies = append(bodies, b)
	}
	return bodies
}

type recorder struct {
	mu        sync.Mutex
	status    map[int]int
	errors    int
	sent      int
	late      int
	sequences int
	lat       []time.Duration
	rejected  []time.Duration
	firstErrs []string
}

func (r *recorder) record(status int, err error, lat time.Duration, seqs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	if err != nil {
		r.errors++
		if len(r.firstErrs) < 5 {
			r.firstErrs = append(r.firstErrs, err.Error())
		}
		return
	}
	r.status[status]++
	switch status {
	case fasthttp.StatusOK:
		r.lat = append(r.lat, lat)
		r.sequences += seqs
	case fasthttp.StatusTooManyRequests:
		r.rejected = append(r.rejected, lat)
	}
}

func (r *recorder) result(elapsed time.Duration) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lat)
	slices.Sort(r.rejected)
	return &Result{Elapsed: elapsed, Sent: r.sent, Late: r.late, Status: r.status, Errors: r.errors,
		Sequences: r.sequences, Latencies: r.lat, Rejections: r.rejected, FirstErrors: r.firstErrs}
}

func send(client *fasthttp.Client, url string, body []byte, timeout time.Duration) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := client.DoTimeout(req, resp, timeout); err != nil {
		return 0, err
	}
	// Drain the body so the connection is reusable; its content is not checked here.
	_ = resp.BodyWriteTo(io.Discard)
	return resp.StatusCode(), nil
}

func closedLoop(ctx context.Context, c Config, client *fasthttp.Client, url string, body func(int64) ([]byte, int), rec *recorder) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < c.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if c.Requests > 0 && i >= int64(c.Requests) {
					return
				}
				b, inputs := body(i)
				t := time.Now()
				status, err := send(client, url, b, c.Timeout)
				if ctx.Err() != nil && err != nil {
					return // the run ended mid-request; not a server error
				}
				rec.record(status, err, time.Since(t), inputs)
			}
		}()
	}
	wg.Wait()
}

func openLoop(ctx context.Context, c Config, client *fasthttp.Client, url string, next func(int64) ([]byte, int), rec *recorder) {
	interval := time.Duration(float64(time.Second) / c.Rate)
	slots := make(chan struct{}, c.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := int64(0); c.Requests <= 0 || i < int64(c.Requests); i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			rec.mu.Lock()
			rec.late++
			rec.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(i int64, due time.Time) {
			defer wg.Done()
			defer func() { <-slots }()
			b, inputs := next(i)
			status, err := send(client, url, b, c.Timeout)
			rec.record(status, err, time.Since(due), inputs)
		}(i, due)
	}
	wg.Wait()
}

func batchLen(c Config, i int64) int {
	n := len(c.Texts)
	batches := (n + c.Batch - 1) / c.Batch
	k := int(i % int64(batches))
	return min(c.Batch, n-k*c.Batch)
}

// Report formats r as the lines `infergo bench` prints.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%s elapsed=%.2fs sent=%d ok=%d late=%d transport_errors=%d\n", r.Mode, r.Elapsed.Seconds(), r.Sent, r.OK(), r.Late, r.Errors)
	codes := make([]int, 0, len(r.Status))
	for code := range r.Status {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for _, code := range codes {
		fmt.Fprintf(&b, "status %d: %d\n", code, r.Status[code])
	}
	fmt.Fprintf(&b, "throughput: %.1f req/s, %.1f seq/s\n", r.Throughput(), r.SeqThroughput())
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(&b, "latency ms: p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", ms(r.Percentile(50)), ms(r.Percentile(90)), ms(r.Percentile(99)), ms(r.Percentile(100)))
	if n := len(r.Rejections); n > 0 {
		fmt.Fprintf(&b, "429 latency ms: p50=%.2f p99=%.2f max=%.2f\n", ms(r.Rejections[n/2]), ms(r.Rejections[min(n-1, n*99/100)]), ms(r.Rejections[n-1]))
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	return b.String()
}
