package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergo/infergo/runtime/sched"
)

// DecodeObserver exports the decode loops' metrics (text generation, infergo_gen_*) to
// Prometheus. Pass it as sched.DecodeConfig.Observer; one observer can serve successive
// models and several loops.
type DecodeObserver struct {
	rejected  prometheus.Counter
	joinWait  prometheus.Histogram
	steps     *prometheus.CounterVec
	stepTime  *prometheus.HistogramVec
	batch     prometheus.Histogram
	reserved  prometheus.Gauge
	finished  *prometheus.CounterVec
	generated prometheus.Counter
}

var _ sched.DecodeObserver = (*DecodeObserver)(nil)

// NewDecodeObserver creates a DecodeObserver and registers its metrics with reg.
func NewDecodeObserver(reg prometheus.Registerer) (*DecodeObserver, error) {
	o := &DecodeObserver{
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_gen_rejected_total",
			Help: "Generation requests refused by admission (answered 429).",
		}),
		joinWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_gen_join_wait_seconds",
			Help:    "Time a sequence waited between its request's start and joining the decode batch.",
			Buckets: latencyBuckets,
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infergo_gen_steps_total",
			Help: "Decoder calls, by kind (prefill: sequences joining; decode: one token for every live sequence).",
		}, []string{"kind"}),
		stepTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "infergo_gen_step_duration_seconds",
			Help:    "Duration of one decoder call, by kind.",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infergo_gen_batch_size",
			Help:    "Live sequences in one decode step.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
		reserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infergo_gen_kv_reserved_positions",
			Help: "KV-cache positions reserved by the live sequences of the last decoder call.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infergo_gen_sequences_finished_total",
			Help: "Sequences that left the decode batch, by reason (length, eos, stopped, time, cancelled, shutdown, error).",
		}, []string{"reason"}),
		generated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_gen_generated_tokens_total",
			Help: "Tokens generated, by finished sequences.",
		}),
	}
	for _, c := range []prometheus.Collector{o.rejected, o.joinWait, o.steps, o.stepTime, o.batch, o.reserved, o.finished, o.generated} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register generation metrics: %w", err)
		}
	}
	return o, nil
}

// Rejected implements sched.DecodeObserver.
func (o *DecodeObserver) Rejected() { o.rejected.Inc() }

// Joined implements sched.DecodeObserver.
func (o *DecodeObserver) Joined(wait time.Duration) { o.joinWait.Observe(wait.Seconds()) }

// Step implements sched.DecodeObserver.
func (o *DecodeObserver) Step(s sched.StepStats) {
	kind := "decode"
	if s.Prefill {
		kind = "prefill"
	} else {
		o.batch.Observe(float64(s.Size))
	}
	o.steps.WithLabelValues(kind).Inc()
	o.stepTime.WithLabelValues(kind).Observe(s.Duration.Seconds())
	o.reserved.Set(float64(s.Reserved))
}

// Finished implements sched.DecodeObserver.
func (o *DecodeObserver) Finished(r sched.FinishReason, err error, tokens int) {
	reason := r.String()
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		reason = "cancelled"
	case errors.Is(err, sched.ErrClosed):
		reason = "shutdown"
	default:
		reason = "error"
	}
	o.finished.WithLabelValues(reason).Inc()
	o.generated.Add(float64(tokens))
}
