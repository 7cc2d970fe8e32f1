package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func fakeServer(t *testing.T, delay time.Duration, every429 int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.URL.Path != "/embed" {
			http.Error(w, "bad", 400)
			return
		}
		time.Sleep(delay)
		if every429 > 0 && k%int64(every429) == 0 {
			w.WriteHeader(429)
			return
		}
		w.Write([]byte("[[0.0]]"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestClosedLoopCountsAndPercentiles(t *testing.T) {
	srv, n := fakeServer(t, 2*time.Millisecond, 4)
	res, err := Run(context.Background(), Config{URL: srv.URL, Texts: []string{"a", "b", "c"}, Batch: 2, Concurrency: 4, Requests: 40})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 40 || n.Load() != 40 {
		t.Fatalf("sent %d, server saw %d; want 40", res.Sent, n.Load())
	}
	if res.Status[200] != 30 || res.Status[429] != 10 {
		t.Errorf("status counts %v, want 30×200 and 10×429", res.Status)
	}
	// Bodies alternate batches of 2 and 1 texts.
	if res.Sequences < 40 || res.Sequences > 50 {
		t.Errorf("sequences %d", res.Sequences)
	}
	if p50 := res.Percentile(50); p50 < 2*time.Millisecond {
		t.Errorf("p50 %v below the server's 2 ms", p50)
	}
	if res.Percentile(99) < res.Percentile(50) {
		t.Error("p99 < p50")
	}
}

func TestOpenLoopKeepsSchedule(t *testing.T) {
	srv, _ := fakeServer(t, 0, 0)
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: srv.URL, Texts: []string{"x"}, Concurrency: 8, Rate: 200, Requests: 50})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("50 requests at 200/s took %v, want ≈250ms", d)
	}
	if res.OK()+res.Late != 50 {
		t.Errorf("ok %d + late %d != 50", res.OK(), res.Late)
	}
}

func TestOpenLoopCountsLateWhenSaturated(t *testing.T) {
	srv, _ := fakeServer(t, 50*time.Millisecond, 0)
	res, err := Run(context.Background(), Config{URL: srv.URL, Texts: []string{"x"}, Concurrency: 2, Rate: 500, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Late == 0 {
		t.Errorf("no late requests with 2 slots, 50 ms answers and 500 req/s: %+v", res)
	}
	// Latency counts from the scheduled start, so it is at least the server time.
	if res.Percentile(50) < 50*time.Millisecond {
		t.Errorf("p50 %v", res.Percentile(50))
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Run(context.Background(), Config{URL: "http://x", Requests: 1}); err == nil {
		t.Error("no texts accepted")
	}
	if _, err := Run(context.Background(), Config{URL: "http://x", Texts: []string{"a"}}); err == nil {
		t.Error("unbounded run accepted")
	}
	if _, err := Run(context.Background(), Config{URL: "http://x", Texts: []string{"a"}, Requests: 1, Route: "grpc"}); err == nil {
		t.Error("unknown route accepted")
	}
}

func TestTransportErrors(t *testing.T) {
	res, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Texts: []string{"a"}, Requests: 3, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.OK() != 0 || len(res.FirstErrors) == 0 {
		t.Errorf("%+v", res)
	}
	if s := res.Report(); s == "" {
		t.Error("empty report")
	}
}

// TestBodyGeneratorAndRejections: a Body function replaces the corpus, and 429 answers are
// timed apart from successes.
func TestBodyGeneratorAndRejections(t *testing.T) {
	srv, n := fakeServer(t, 0, 5)
	var calls atomic.Int64
	res, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 3, Requests: 25,
		Body: func(i int64) ([]byte, int) {
			calls.Add(1)
			return []byte(`{"inputs": ["a", "b"]}`), 2
		}})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 25 || n.Load() != 25 {
		t.Fatalf("generator called %d times, server saw %d", calls.Load(), n.Load())
	}
	if res.Status[429] != 5 || len(res.Rejections) != 5 || res.Sequences != 40 {
		t.Errorf("429s %d (timed %d), sequences %d", res.Status[429], len(res.Rejections), res.Sequences)
	}
	// Nearest rank over the 5 sorted rejections: p50 is the 3rd, p100 the last.
	if len(res.Rejections) == 5 && (res.RejectionPercentile(50) != res.Rejections[2] || res.RejectionPercentile(100) != res.Rejections[4]) {
		t.Errorf("rejection percentiles %v %v of %v", res.RejectionPercentile(50), res.RejectionPercentile(100), res.Rejections)
	}
}
