// Package sched is Infergo's batching scheduler: the only path from a pipeline to a model.
//
// Requests from every client enter one queue per model. One goroutine owns that queue and
// forms batches under a padded-token budget (longest sequence × batch size): when a worker
// becomes free it takes the oldest waiting sequence and the sequences of the nearest lengths
// from a window of the queue, so similar lengths share a batch and no sequence starves. A
// planner (plan.go) decides how far the batch reaches: it splits the window into runs of
// similar length whenever the padding saved outweighs the fixed cost of an extra run.
// Workers run batches on the model's sessions in parallel and hand every sequence its own rows
// of the outputs, or what a per-request Reducer makes of them on the worker.
//
// Admission is separate from submission: Admit fails at once with ErrOverloaded when the
// request limit is reached (HTTP 429, never a timeout), and the pipeline tokenizes between
// Admit and Run, outside the model loop. While admitted requests are still tokenizing, the
// batcher may hold a batch back for up to MaxQueueDelay so their sequences can join it.
package sched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergo/infergo/runtime"
)

// Errors a scheduler returns. Transports map ErrOverloaded to HTTP 429 / RESOURCE_EXHAUSTED.
var (
	ErrOverloaded = errors.New("sched: overloaded: too many concurrent requests")
	ErrClosed     = errors.New("sched: scheduler closed")
)

// Config tunes batching. Zero values take the defaults listed.
type Config struct {
	// MaxBatchTokens bounds a batch's padded size, longest sequence × sequences (default 8192).
	// A single sequence longer than this still runs, alone.
	MaxBatchTokens int
	// MaxBatchSize bounds the sequences in one batch (default 128).
	MaxBatchSize int
	// MaxQueueDelay is the longest a batch is held back for sequences of requests that were
	// admitted but are still being tokenized (default 1ms; negative disables waiting).
	MaxQueueDelay time.Duration
	// SortWindow is how many of the oldest queued sequences are considered when grouping by
	// length (default 512).
	SortWindow int
	// MaxConcurrentRequests bounds admitted requests; beyond it Admit fails (default 512).
	MaxConcurrentRequests int
	// Workers is the number of batches run at once (default: one per session).
	Workers int
	// RunOverheadTokens is the fixed cost of one model run, expressed in padded tokens
	// (default 8, measured on CPU; see plan.go). The batcher splits queued sequences into
	// batches of similar length when the padding that saves is worth more than the extra
	// runs. Negative: never split for padding; a batch takes all that fits the budgets.
	RunOverheadTokens int
	// PadID fills padded positions of input_ids.
	PadID int64
	// Solo, when set, runs a batch that is the only work in the scheduler (every worker idle,
	// nothing else queued or being tokenized): a session of the same graph with more intra-op
	// threads, so that a lone request gets every core instead of one worker's share. Work
	// that arrives during a solo run starts on a free worker's own session at once.
	Solo runtime.Session
	// Observer receives metrics; nil discards them.
	Observer Observer
}

// defaultRunOverhead is the fixed cost of a run in padded tokens: 6–8 on the benchmark model
// with one intra-op thread (bench/RESULTS.md, "cost model").
const defaultRunOverhead = 8

func (c Config) withDefaults(sessions int) Config {
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 8192
	}
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = 128
	}
	if c.MaxQueueDelay == 0 {
		c.MaxQueueDelay = time.Millisecond
	}
	if c.SortWindow <= 0 {
		c.SortWindow = 512
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = 512
	}
	if c.Workers <= 0 {
		c.Workers = sessions
	}
	if c.RunOverheadTokens == 0 {
		c.RunOverheadTokens = defaultRunOverhead
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

// Sequence is one tokenized input. TypeIDs may be nil (all zeros).
type Sequence struct {
	IDs     []int32
	TypeIDs []int32
	// Features feeds graphs with dense inputs (audio features, pixel values) instead of
	// token ids: one tensor per graph input, without the batch axis (see features.go).
	Features map[string]runtime.Tensor
}

// Result holds one sequence's share of a batch's outputs, one tensor per session output in
// the order of the session's ModelInfo().Outputs. The batch dimension is removed, and outputs
// of rank 3 or more (token level: [batch, seq, ...]) are cut to the sequence's own length.
// The data may share memory with other results of the same batch: treat it as read-only.
type Result struct {
	Outputs []runtime.Tensor
	// Queue is how long the sequence waited before its batch started.
	Queue time.Duration
	// Inference is how long its batch ran.
	Inference time.Duration
	// BatchSize is the number of sequences in its batch.
	BatchSize int
}

// Reducer turns one sequence's share of a batch's outputs into what its request keeps. It
// runs on the worker right after the batch, so the batch's buffers can be reused at once
// instead of staying pinned until the request is answered: outputs (laid out as in Result)
// are valid only during the call, and the tensors returned must not alias them. index is the
// sequence's position in the request. A Reducer must be safe for concurrent use and quick
// (a pooling pass over the rows): it runs on the model's critical path.
type Reducer func(index int, outputs []runtime.Tensor) ([]runtime.Tensor, error)

// Scheduler batches sequences across requests for one model.
type Scheduler struct {
	cfg      Config
	sessions []runtime.Session
	layout   inputLayout
	outputs  []*outputPlan

	admitted   atomic.Int64 // requests between Admit and the end of Run (or Release)
	tokenizing atomic.Int64 // admitted requests that have not called Run yet
	running    atomic.Int64 // batches handed to workers whose Run has not returned

	// Batcher-goroutine state: the planner and scratch space reused by form.
	plan  planner
	order []int
	lens  []int
	taken []bool

	submit chan submission
	closed chan struct{} // closed when Close starts: no more admission
	quit   chan struct{} // closed when the batcher must stop, failing what is left
	done   chan struct{} // closed when the batcher and all workers have exited
	once   sync.Once
}

// New starts a scheduler over sessions, which must all load the same graph. Every batch runs
// on one session; worker i uses sessions[i % len(sessions)].
func New(sessions []runtime.Session, cfg Config) (*Scheduler, error) {
	if len(sessions) == 0 {
		return nil, errors.New("sched: no sessions")
	}
	layout, err := newInputLayout(sessions[0].Info())
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(len(sessions))
	outputs := newOutputPlans(sessions[0].Info())
	if layout.hasFeatures() {
		// Feature batches (features.go) do not follow the n×L encoder convention the output
		// prediction relies on: let the engine allocate their outputs.
		for _, p := range outputs {
			p.predictable = false
		}
		// Their length is frames, and a run's fixed cost is not worth a few frames of
		// padding: batch all that fits rather than split by length.
		cfg.RunOverheadTokens = -1
	}
	s := &Scheduler{
		cfg:      cfg,
		sessions: sessions,
		layout:   layout,
		outputs:  outputs,
		submit:   make(chan submission),
		closed:   make(chan struct{}),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		plan:     planner{overhead: cfg.RunOverheadTokens, maxSize: cfg.MaxBatchSize, maxTok: cfg.MaxBatchTokens},
	}
	go s.run()
	return s, nil
}

// Config returns the effective configuration.
func (s *Scheduler) Config() Config { return s.cfg }

// Info returns the model's inputs and outputs.
func (s *Scheduler) Info() runtime.ModelInfo { return s.sessions[0].Info() }

// Ticket is an admitted request. Call Run exactly once, or Release if the request ends
// before it has anything to run.
type Ticket struct {
	s    *Scheduler
	once sync.Once
	ran  bool
}

// Admit reserves a request slot without waiting. It fails with ErrOverloaded when
// MaxConcurrentRequests requests are in flight and with ErrClosed after Close.
func (s *Scheduler) Admit() (*Ticket, error) {
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}
	if n := s.admitted.Add(1); n > int64(s.cfg.MaxConcurrentRequests) {
		s.admitted.Add(-1)
		s.cfg.Observer.Rejected()
		return nil, ErrOverloaded
	}
	s.tokenizing.Add(1)
	return &Ticket{s: s}, nil
}

// submission carries a request's items to the batcher. The batcher marks the ticket queued
// as it takes them, before it decides whether to hold the batch for requests still
// tokenizing: were it left to the sender after the handover, a lone request could be held
// for MaxQueueDelay waiting for itself, or miss the solo session.
type submission struct {
	items  []*item
	ticket *Ticket
}

// queued records that the request's items are in the queue: it no longer counts as
// tokenizing.
func (t *Ticket) queued() { t.once.Do(func() { t.s.tokenizing.Add(-1) }) }

// Release gives the slot back without running anything. It is a no-op after Run.
func (t *Ticket) Release() {
	t.once.Do(func() {
		t.s.tokenizing.Add(-1)
		t.s.admitted.Add(-1)
	})
}

// Run queues seqs and waits for their results, in order. Sequences of one request may run in
// different batches. If ctx ends first, Run returns an error wrapping ctx.Err() at once and
// the sequences still queued are dropped before they reach the model.
func (t *Ticket) Run(ctx context.Context, seqs []Sequence) ([]Result, error) {
	return t.RunReduce(ctx, seqs, nil)
}

// RunReduce is Run with reduce (nil: none) applied on the worker to each sequence's outputs;
// each Result's Outputs are then what reduce returned.
func (t *Ticket) RunReduce(ctx context.Context, seqs []Sequence, reduce Reducer) ([]Result, error) {
	if t.ran {
		return nil, errors.New("sched: ticket already used")
	}
	t.ran = true
	s := t.s
	defer t.Release()
	if len(seqs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}
	req := &request{ctx: ctx, reduce: reduce, results: make([]Result, len(seqs)), done: make(chan struct{})}
	req.remaining.Store(int64(len(seqs)))
	now := time.Now()
	items := make([]*item, len(seqs))
	for i, seq := range seqs {
		if len(seq.IDs) == 0 && seq.Features == nil {
			return nil, fmt.Errorf("sched: sequence %d is empty", i)
		}
		if err := s.layout.checkSequence(&seq); err != nil { // features.go
			return nil, fmt.Errorf("sched: sequence %d: %w", i, err)
		}
		if seq.TypeIDs != nil && len(seq.TypeIDs) != len(seq.IDs) {
			return nil, fmt.Errorf("sched: sequence %d has %d ids but %d type ids", i, len(seq.IDs), len(seq.TypeIDs))
		}
		items[i] = &item{req: req, index: i, seq: seq, enqueued: now}
	}
	select {
	case s.submit <- submission{items: items, ticket: t}:
	case <-s.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("sched: %w", ctx.Err())
	}
	defer s.admitted.Add(-1)

	select {
	case <-req.done:
		if err := req.failure(); err != nil {
			return nil, err
		}
		return req.results, nil
	case <-ctx.Done():
		req.cancelled.Store(true)
		return nil, fmt.Errorf("sched: %w", ctx.Err())
	}
}

// Submit is Admit followed by Run.
func (s *Scheduler) Submit(ctx context.Context, seqs []Sequence) ([]Result, error) {
	t, err := s.Admit()
	if err != nil {
		return nil, err
	}
	return t.Run(ctx, seqs)
}

// InFlight returns the number of admitted requests.
func (s *Scheduler) InFlight() int { return int(s.admitted.Load()) }

// Close stops admission, lets queued and running work finish, and returns once every worker
// has stopped. If ctx ends first, queued sequences fail with ErrClosed, running batches are
// cancelled, and Close returns ctx's error after the workers have stopped. Sessions are not
// closed: they belong to the caller.
func (s *Scheduler) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.closed) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		<-s.done
		return fmt.Errorf("sched: close: %w", ctx.Err())
	}
}

func (s *Scheduler) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

// request gathers the results of one Run.
type request struct {
	ctx       context.Context
	reduce    Reducer
	results   []Result
	remaining atomic.Int64
	cancelled atomic.Bool
	err       atomic.Pointer[error]
	done      chan struct{}
}

func (r *request) gone() bool { return r.cancelled.Load() || r.ctx.Err() != nil }

func (r *request) failure() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

// finish records one sequence's outcome; the last one wakes Run.
func (r *request) finish(index int, res Result, err error) {
	if err != nil {
		r.err.CompareAndSwap(nil, &err)
	} else {
		r.results[index] = res
	}
	if r.remaining.Add(-1) == 0 {
		close(r.done)
	}
}

// item is one queued sequence.
type item struct {
	req      *request
	index    int
	seq      Sequence
	enqueued time.Time
}

func (it *item) length() int {
	if it.seq.Features != nil {
		return featureLength(&it.seq) // features.go
	}
	return len(it.seq.IDs)
}
