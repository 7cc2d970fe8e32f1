package sched

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Step-wise decoding with continuous batching: the scheduler's second path to a model, for
// autoregressive decoders (text generation, Whisper's decoder). A DecodeLoop owns one live
// batch and one goroutine; between two model steps it lets new sequences join (prefill) and
// finished, cancelled or timed-out ones leave, so sequences from different requests share
// every decoder step. What a step feeds the model — tensors, KV cache layout, sampling — is
// the Decoder's business; the loop knows only sequences, budgets and lifetimes.
//
// Lifecycle of one request:
//
//	t, err := loop.Admit()              // ErrOverloaded at once when full (HTTP 429)
//	... tokenize, build one *Seq per output sequence (State = decoder-specific) ...
//	streams, err := t.Start(ctx, seqs...) // or t.Release() if nothing is started
//	for { tok, err := streams[0].Next(ctx); if err == io.EOF { break } ... }
//
// Ownership (design-notes §7.6): once Start has returned nil, the loop owns every Seq it was
// given until that sequence's final event, and delivers exactly one final event per Seq — io.EOF
// from Stream.Next with Stream.Reason set, or an error — also when the request is cancelled,
// its deadline passes, the model fails or the loop shuts down. If Start returns an error,
// nothing was queued and the caller keeps the sequences.

// Decoder is the model-specific half of step-wise generation. A pipeline implements it once
// per loaded model; the DecodeLoop drives it.
//
// Threading: the loop calls Prefill, Step and Release from its single goroutine, one call at a
// time, so a Decoder's batch state (KV caches, row maps, scratch buffers) needs no locking. The
// ctx passed to Prefill and Step ends only when the loop is shut down hard (Close's ctx
// expired); per-request cancellation never reaches it — the loop removes cancelled sequences
// between calls, through Release. Pass ctx to runtime.Session.Run so a hard shutdown
// terminates a running step.
//
// Sequences: Prefill and Step receive *Seq values whose State field the pipeline set before
// Start; the loop never reads or writes State. During Prefill and Step — and only there — the
// Decoder reports each sequence's new token with Seq.Emit and may end a sequence with
// Seq.Finish (end-of-sequence token, or any model-specific stop). The loop ends a sequence
// itself when it has emitted Seq.MaxSteps tokens, its Deadline passed, its request's context
// ended, or its request called Stream.Stop.
//
// Implementing a Decoder (text generation, Whisper):
//
//   - Prefill(ctx, join) runs everything a sequence needs before its first decode step — the
//     prompt's forward pass (Whisper: the encoder pass over the audio features, then the
//     decoder over the forced prompt tokens, keeping the cross-attention KV computed once per
//     sequence) — batching the joiners together where the graph allows, takes the sequences
//     into the decoder's live state (their KV rows), and emits each one's first new token. The
//     sequences already live are not passed; their state must survive untouched. join is
//     never empty.
//   - Step(ctx, live) advances every live sequence by exactly one token: one forward pass
//     over the whole batch where the graph allows (padding, attention mask and position ids
//     are the Decoder's to build), several where it does not (Whisper's with-past graph has
//     no attention mask, so rows of different lengths need separate runs, grouped by length),
//     then logits processing and sampling per sequence, then Emit (and Finish on eos). live is
//     every sequence that Prefill accepted and that has not been released, in no particular
//     order; the slice is the loop's and is valid only during the call.
//   - Release(s) drops s from the decoder's state (free or reuse its KV rows). It is called
//     exactly once for every sequence that was passed to Prefill, whether Prefill succeeded or
//     not, after the sequence's last Prefill or Step call; a sequence the decoder no longer
//     holds must be a no-op. Release must not fail or block.
//   - An error from Prefill fails all joiners; an error from Step fails every live sequence
//     (each gets the error as its final event) and all of them are released. The decoder must
//     stay usable for later Prefill calls. A panic is recovered and treated as an error.
//   - Budgets: Seq.Cost is what the sequence may occupy of the KV cache (decoder positions);
//     Seq.Prompt is its Prefill work, bounded per iteration by DecodeConfig.MaxPrefillTokens.
//
// Whisper in particular: State holds the sequence's token history, its self-attention KV, and
// its cross-attention KV (present.*.encoder.* of its first decoder run, constant afterwards:
// hf-inference-api §5.9), or the encoder output it is computed from. The forced prompt tokens
// (<|startoftranscript|><|lang|><|task|><|notimestamps|>) are fed in Prefill; suppress_tokens
// and begin_suppress_tokens are logits processing before the argmax, in Prefill and Step; eos
// ends the sequence with Finish. Seq.Prompt should count the encoder work (its 1500 frames, or
// any unit that makes MaxPrefillTokens bound the encoder passes per iteration) and Seq.Cost
// the decoder positions (≤ max_target_positions). pipelines/textgen.Decoder is a complete
// implementation to copy from: a left-padded KV batch fed back in place, joins and leaves that
// copy only the rows that move, and grouped runs for graphs that cannot pad.
type Decoder interface {
	// Prefill takes new sequences into the batch and emits each one's first token.
	Prefill(ctx context.Context, join []*Seq) error
	// Step advances every live sequence by one token.
	Step(ctx context.Context, live []*Seq) error
	// Release frees what the decoder holds for s.
	Release(s *Seq)
}

// FinishReason says why a sequence ended without an error.
type FinishReason uint8

// Finish reasons. The zero value means the sequence has not finished.
const (
	FinishNone    FinishReason = iota
	FinishLength               // Seq.MaxSteps tokens were emitted
	FinishEOS                  // the Decoder ended it (Seq.Finish: end-of-sequence token)
	FinishStopped              // the request ended it (Stream.Stop: a stop sequence matched)
	FinishTime                 // Seq.Deadline passed (max_time)
)

var finishNames = [...]string{"none", "length", "eos", "stopped", "time"}

func (r FinishReason) String() string {
	if int(r) < len(finishNames) {
		return finishNames[r]
	}
	return fmt.Sprintf("finish(%d)", uint8(r))
}

// Token is one decoded position.
type Token struct {
	ID int32
	// LogProb is the log-probability of ID under the distribution it was drawn from, after
	// logits processing (temperature, top-k/p, penalties), as TGI reports it.
	LogProb float32
}

// Seq is one sequence in a DecodeLoop. The pipeline fills the exported fields before
// DecodeTicket.Start and must not change them afterwards.
type Seq struct {
	// Cost is what the sequence reserves of DecodeConfig.MaxBatchTokens while it is live: the
	// most KV positions it can occupy (prompt plus new tokens). Must be positive.
	Cost int
	// Prompt is the work its Prefill does, in tokens (0 counts as 1), for
	// DecodeConfig.MaxPrefillTokens (Whisper: the encoder frames plus the forced tokens).
	Prompt int
	// MaxSteps ends the sequence with FinishLength once it has emitted this many tokens
	// (0: no limit; the Decoder must then end it).
	MaxSteps int
	// Deadline ends the sequence with FinishTime before the first step that starts after it
	// (zero: none). The tokens emitted until then are kept.
	Deadline time.Time
	// State is the Decoder's per-sequence state. The loop never touches it.
	State any

	// Loop-owned; see the methods.
	ctx      context.Context
	ticket   *DecodeTicket
	stream   *Stream
	steps    int
	finish   FinishReason
	enqueued time.Time
}

// Emit delivers the sequence's next token to its request. Only a Decoder calls it, during
// Prefill or Step — from the calling goroutine or from goroutines the call starts and waits
// for, one goroutine per sequence.
func (s *Seq) Emit(t Token) {
	s.steps++
	s.stream.push(t)
}

// Finish ends the sequence after the current Prefill or Step (only a Decoder calls it, with
// the same rules as Emit).
func (s *Seq) Finish(r FinishReason) {
	if s.finish == FinishNone {
		s.finish = r
	}
}

// Steps returns how many tokens the sequence has emitted.
func (s *Seq) Steps() int { return s.steps }

// Stream is the request's side of one started Seq: its tokens in order, then one final event.
// Next and Stop may be called from any goroutine; Next from one at a time.
type Stream struct {
	mu     sync.Mutex
	toks   []Token
	read   int
	ended  bool
	reason FinishReason
	err    error
	wake   chan struct{} // capacity 1: "something changed"
	stop   atomic.Bool
}

func newStream() *Stream { return &Stream{wake: make(chan struct{}, 1)} }

// Next returns the sequence's next token. Once all tokens have been read it returns io.EOF if the sequence finished normally, else the error that ended it (a context error if
// its request was cancelled, ErrClosed on shutdown, or the model's error). If ctx ends first,
// Next returns ctx's error; the sequence itself is ended by the context given to Start.
func (st *Stream) Next(ctx context.Context) (Token, error) {
	for {
		st.mu.Lock()
		if st.read < len(st.toks) {
			t := st.toks[st.read]
			st.read++
			st.mu.Unlock()
			return t, nil
		}
		ended, err := st.ended, st.err
		st.mu.Unlock()
		if ended {
			if err != nil {
				return Token{}, err
			}
			return Token{}, io.EOF
		}
		select {
		case <-st.wake:
		case <-ctx.Done():
			return Token{}, fmt.Errorf("sched: stream: %w", ctx.Err())
		}
	}
}

// Reason returns why the sequence finished (FinishNone while it runs or if it failed).
func (st *Stream) Reason() FinishReason {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.reason
}

// Stop asks the loop to end the sequence with FinishStopped before its next step. Tokens
// computed meanwhile are still delivered; the final event follows them.
func (st *Stream) Stop() { st.stop.Store(true) }

func (st *Stream) push(t Token) {
	st.mu.Lock()
	st.toks = append(st.toks, t)
	st.mu.Unlock()
	st.notify()
}

func (st *Stream) end(r FinishReason, err error) {
	st.mu.Lock()
	st.ended, st.reason, st.err = true, r, err
	st.mu.Unlock()
	st.notify()
}

func (st *Stream) notify() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// DecodeConfig tunes a DecodeLoop. Zero values take the defaults listed.
type DecodeConfig struct {
	// MaxBatchSize bounds the live sequences (default 64).
	MaxBatchSize int
	// MaxBatchTokens bounds the sum of Seq.Cost over live sequences: the KV-cache budget
	// (default 65536). A sequence whose Cost alone exceeds it still runs, alone.
	MaxBatchTokens int
	// MaxPrefillTokens bounds the Seq.Prompt sum of the sequences joining in one Prefill
	// (default 4096, TGI's max_batch_prefill_tokens): a burst of arrivals joins over several
	// iterations, each followed by a decode step, so live sequences keep streaming and the
	// first arrivals get their first token sooner. A longer prompt still joins, alone.
	MaxPrefillTokens int
	// MaxConcurrentRequests bounds admitted requests; beyond it Admit fails (default 512).
	MaxConcurrentRequests int
	// Observer receives metrics; nil discards them.
	Observer DecodeObserver
}

func (c DecodeConfig) withDefaults() DecodeConfig {
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = 64
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 65536
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = 512
	}
	if c.MaxPrefillTokens <= 0 {
		c.MaxPrefillTokens = 4096
	}
	if c.Observer == nil {
		c.Observer = nopDecodeObserver{}
	}
	return c
}

// DecodeLoop runs a Decoder over a continuously changing batch of sequences.
type DecodeLoop struct {
	cfg DecodeConfig
	dec Decoder

	admitted atomic.Int64 // requests from Admit until their last sequence ended (or Release)

	mu      sync.Mutex
	pending []*Seq // started, not yet taken by the loop
	stopped bool   // the loop has stopped taking sequences: Start fails

	wake    chan struct{} // capacity 1: pending changed
	closed  chan struct{} // Close started: no more admission
	quit    chan struct{} // hard stop: fail everything left
	done    chan struct{} // the loop goroutine exited
	once    sync.Once
	runCtx  context.Context
	cancel  context.CancelFunc
	stepped atomic.Int64 // model calls made (Prefill + Step), for tests and stats
}

// NewDecodeLoop starts a loop over d.
func NewDecodeLoop(d Decoder, cfg DecodeConfig) (*DecodeLoop, error) {
	if d == nil {
		return nil, errors.New("sched: decode loop: no decoder")
	}
	l := &DecodeLoop{
		cfg:    cfg.withDefaults(),
		dec:    d,
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	l.runCtx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l, nil
}

// Config returns the effective configuration.
func (l *DecodeLoop) Config() DecodeConfig { return l.cfg }

// InFlight returns the number of admitted requests.
func (l *DecodeLoop) InFlight() int { return int(l.admitted.Load()) }

// ModelCalls returns how many Prefill and Step calls the loop has made.
func (l *DecodeLoop) ModelCalls() int64 { return l.stepped.Load() }

// DecodeTicket is an admitted request. Call Start once, or Release if the request ends before
// it has anything to start.
type DecodeTicket struct {
	l       *DecodeLoop
	once    sync.Once
	started atomic.Bool
	left    atomic.Int64 // sequences started and not yet ended
}

// Admit reserves a request slot without waiting. It fails with ErrOverloaded when
// MaxConcurrentRequests requests are in flight and with ErrClosed after Close.
func (l *DecodeLoop) Admit() (*DecodeTicket, error) {
	select {
	case <-l.closed:
		return nil, ErrClosed
	default:
	}
	if n := l.admitted.Add(1); n > int64(l.cfg.MaxConcurrentRequests) {
		l.admitted.Add(-1)
		l.cfg.Observer.Rejected()
		return nil, ErrOverloaded
	}
	return &DecodeTicket{l: l}, nil
}

// Release gives the slot back without starting anything. It is a no-op after a successful
// Start (the slot is then released when the last sequence ends).
func (t *DecodeTicket) Release() {
	if t.started.Load() {
		return
	}
	t.once.Do(func() {
		t.l.admitted.Add(-1)
		t.l.poke() // a draining loop may be waiting for this request
	})
}

// Start queues seqs to join the batch and returns one Stream per Seq, in order. ctx is the
// request's: when it ends, each of its sequences leaves the batch before the next step and
// gets ctx's error as its final event. Start never waits for the loop.
func (t *DecodeTicket) Start(ctx context.Context, seqs ...*Seq) ([]*Stream, error) {
	if t.started.Load() {
		return nil, errors.New("sched: decode ticket already used")
	}
	if len(seqs) == 0 {
		return nil, errors.New("sched: no sequences to start")
	}
	for i, s := range seqs {
		if s == nil || s.Cost <= 0 {
			return nil, fmt.Errorf("sched: sequence %d: cost must be positive", i)
		}
		if s.stream != nil {
			return nil, fmt.Errorf("sched: sequence %d was already started", i)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}
	l := t.l
	now := time.Now()
	streams := make([]*Stream, len(seqs))
	for i, s := range seqs {
		s.ctx, s.ticket, s.stream, s.enqueued = ctx, t, newStream(), now
		streams[i] = s.stream
	}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		for _, s := range seqs {
			s.ctx, s.ticket, s.stream = nil, nil, nil
		}
		return nil, ErrClosed
	}
	t.started.Store(true)
	t.left.Store(int64(len(seqs)))
	l.pending = append(l.pending, seqs...)
	l.mu.Unlock()
	l.poke()
	return streams, nil
}

func (l *DecodeLoop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close stops admission, lets queued and live sequences finish, and returns once the loop has
// stopped. If ctx ends first, the running step is cancelled, every remaining sequence gets
// ErrClosed as its final event, and Close returns ctx's error after the loop has stopped.
func (l *DecodeLoop) Close(ctx context.Context) error {
	l.once.Do(func() { close(l.closed) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		select {
		case <-l.quit:
		default:
			close(l.quit)
		}
		l.cancel()
		<-l.done
		return fmt.Errorf("sched: close decode loop: %w", ctx.Err())
	}
}
