package server

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
)

// Metrics carry the infergo_ prefix. Request-level stage histograms (tokenization, queue,
// inference) mirror the x-*-time headers; the scheduler's own view (per sequence and per
// batch) comes from SchedObserver.

// Buckets for latencies from sub-millisecond tokenization to multi-second batches.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	tokenize  prometheus.Histogram
	queue     prometheus.Histogram
	inference prometheus.Histogram
	tokens    prometheus.Histogram
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infergo_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "infergo_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its response body, by route.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		tokenize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_request_tokenization_duration_seconds",
			Help:    "Tokenization time of one inference request.",
			Buckets: latencyBuckets,
		}),
		queue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_request_queue_duration_seconds",
			Help:    "Longest queue wait among one inference request's sequences.",
			Buckets: latencyBuckets,
		}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_request_inference_duration_seconds",
			Help:    "Longest batch one inference request waited for.",
			Buckets: latencyBuckets,
		}),
		tokens: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_request_tokens",
			Help:    "Tokens sent to the model by one inference request.",
			Buckets: prometheus.ExponentialBuckets(8, 2, 12),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.tokenize, m.queue, m.inference, m.tokens} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) request(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *httpMetrics) stats(st pipelines.Stats) {
	m.tokenize.Observe(st.Tokenize.Seconds())
	m.queue.Observe(st.Queue.Seconds())
	m.inference.Observe(st.Inference.Seconds())
	m.tokens.Observe(float64(st.Tokens))
}

// SchedObserver exports runtime/sched metrics to Prometheus. Pass it as
// sched.Config.Observer; one observer can serve successive models (hot swaps).
type SchedObserver struct {
	queue        prometheus.Histogram
	batchSize    prometheus.Histogram
	batchTokens  prometheus.Histogram
	padding      prometheus.Histogram
	inference    prometheus.Histogram
	dispatch     prometheus.Histogram
	batchErrors  prometheus.Counter
	rejected     prometheus.Counter
	dropped      prometheus.Counter
	batchesTotal prometheus.Counter
}

var _ sched.Observer = (*SchedObserver)(nil)

// NewSchedObserver creates a SchedObserver and registers its metrics with reg.
func NewSchedObserver(reg prometheus.Registerer) (*SchedObserver, error) {
	o := &SchedObserver{
		queue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_queue_duration_seconds",
			Help:    "Time one sequence waited in the scheduler queue before its batch started.",
			Buckets: latencyBuckets,
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_batch_size",
			Help:    "Sequences per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
		batchTokens: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_batch_tokens",
			Help:    "Real (unpadded) tokens per batch.",
			Buckets: prometheus.ExponentialBuckets(16, 2, 11),
		}),
		padding: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_batch_padding_ratio",
			Help:    "Share of a batch's computed tokens that were padding: 1 - tokens/padded tokens.",
			Buckets: prometheus.LinearBuckets(0, 0.1, 10),
		}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_batch_inference_duration_seconds",
			Help:    "Model run time of one batch.",
			Buckets: latencyBuckets,
		}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_sched_dispatch_wait_seconds",
			Help:    "Time a free worker and queued work waited for each other before a batch started (hold-back for requests still tokenizing, forming the batch, waking the worker).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}),
		batchesTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_sched_batches_total",
			Help: "Batches run.",
		}),
		batchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_sched_batch_failures_total",
			Help: "Batches whose model run failed.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_sched_rejected_total",
			Help: "Requests refused by admission (answered 429).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_sched_dropped_total",
			Help: "Sequences dropped before batching because their request was cancelled.",
		}),
	}
	for _, c := range []prometheus.Collector{o.queue, o.batchSize, o.batchTokens, o.padding, o.inference,
		o.dispatch, o.batchesTotal, o.batchErrors, o.rejected, o.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register scheduler metrics: %w", err)
		}
	}
	return o, nil
}

// Rejected implements sched.Observer.
func (o *SchedObserver) Rejected() { o.rejected.Inc() }

// Queued implements sched.Observer.
func (o *SchedObserver) Queued(wait time.Duration) { o.queue.Observe(wait.Seconds()) }

// Dropped implements sched.Observer.
func (o *SchedObserver) Dropped() { o.dropped.Inc() }

// Batch implements sched.Observer.
func (o *SchedObserver) Batch(b sched.BatchStats) {
	o.batchesTotal.Inc()
	if b.Err != nil {
		o.batchErrors.Inc()
	}
	o.batchSize.Observe(float64(b.Size))
	o.batchTokens.Observe(float64(b.Tokens))
	if b.PaddedTokens > 0 {
		o.padding.Observe(1 - float64(b.Tokens)/float64(b.PaddedTokens))
	}
	o.inference.Observe(b.Inference.Seconds())
	o.dispatch.Observe(b.Dispatch.Seconds())
}

// handleMetrics writes the registry in the Prometheus text format.
func (s *Server) handleMetrics(rc *fasthttp.RequestCtx, st *reqState) {
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		s.writeError(rc, st, &httpError{kind: kindInternal, msg: "metrics unavailable", cause: err})
		return
	}
	if err != nil {
		s.log.Warn("metrics gathered with errors", "err", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	rc.SetStatusCode(fasthttp.StatusOK)
	rc.SetContentType(string(format))
	enc := expfmt.NewEncoder(rc, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.log.Warn("encode metrics", "err", err)
			return
		}
	}
}
