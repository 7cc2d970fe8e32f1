package sched

import (
	"fmt"
	"time"
)

// StepStats describes one Prefill or Step call.
type StepStats struct {
	Prefill  bool          // a Prefill (joins) rather than a decode Step
	Size     int           // sequences passed to the call
	Live     int           // live sequences after the call
	Reserved int           // sum of Seq.Cost over the live sequences (KV budget in use)
	Duration time.Duration // the call
	Err      error
}

// DecodeObserver receives DecodeLoop metrics. Methods are called from the loop goroutine or
// from Admit and must not block.
type DecodeObserver interface {
	// Rejected counts a request refused by admission.
	Rejected()
	// Joined reports how long a sequence waited between Start and its Prefill.
	Joined(wait time.Duration)
	// Step reports one Prefill or Step call.
	Step(StepStats)
	// Finished reports a sequence's final event: its reason, or the error that ended it (a
	// context error when its request went away), and how many tokens it emitted.
	Finished(reason FinishReason, err error, tokens int)
}

type nopDecodeObserver struct{}

func (nopDecodeObserver) Rejected()                         {}
func (nopDecodeObserver) Joined(time.Duration)              {}
func (nopDecodeObserver) Step(StepStats)                    {}
func (nopDecodeObserver) Finished(FinishReason, error, int) {}

// run is the loop goroutine: it alone touches queue, live and the Decoder.
func (l *DecodeLoop) run() {
	defer close(l.done)
	var queue, live []*Seq
	reserved := 0 // sum of Cost over live
	for {
		if l.hardStopped() {
			queue = append(queue, l.takePending(true)...)
			for _, s := range live {
				l.dec.Release(s)
				l.end(s, FinishNone, ErrClosed)
			}
			for _, s := range queue {
				l.end(s, FinishNone, ErrClosed)
			}
			return
		}
		queue = append(queue, l.takePending(false)...)

		// Leaves between steps: requests gone, stopped or out of time; then queued sequences
		// whose request is gone never reach the model.
		now := time.Now()
		live = l.retire(live, now, &reserved)
		kept := queue[:0]
		for _, s := range queue {
			if err := s.ctx.Err(); err != nil {
				l.end(s, FinishNone, fmt.Errorf("sched: %w", err))
				continue
			}
			kept = append(kept, s)
		}
		clear(queue[len(kept):])
		queue = kept

		// Joins, first come first served, under the size, KV and prefill budgets. A sequence
		// larger than a budget joins when nothing else would, alone.
		n, prefill := 0, 0
		for n < len(queue) && len(live)+n < l.cfg.MaxBatchSize {
			c, p := queue[n].Cost, max(queue[n].Prompt, 1)
			if reserved+c > l.cfg.MaxBatchTokens && (len(live) > 0 || n > 0) {
				break
			}
			if prefill+p > l.cfg.MaxPrefillTokens && n > 0 {
				break
			}
			reserved += c
			prefill += p
			n++
		}
		if n > 0 {
			join := append([]*Seq(nil), queue[:n]...)
			queue = append(queue[:0], queue[n:]...)
			for _, s := range join {
				l.cfg.Observer.Joined(now.Sub(s.enqueued))
			}
			err := l.call(true, join, len(live)+len(join), reserved)
			if err != nil {
				for _, s := range join {
					l.dec.Release(s)
					reserved -= s.Cost
					l.end(s, FinishNone, err)
				}
			} else {
				live = append(live, join...)
				live = l.finished(live, &reserved)
			}
		}

		if len(live) > 0 {
			if err := l.call(false, live, len(live), reserved); err != nil {
				for _, s := range live {
					l.dec.Release(s)
					l.end(s, FinishNone, err)
				}
				clear(live)
				live, reserved = live[:0], 0
			} else {
				live = l.finished(live, &reserved)
			}
			continue
		}
		if len(queue) > 0 {
			continue
		}
		// Idle: nothing live, nothing queued.
		select {
		case <-l.closed:
			if l.drained() {
				return
			}
		default:
		}
		select {
		case <-l.wake:
		case <-l.closed:
			if l.drained() {
				return
			}
			select {
			case <-l.wake:
			case <-l.quit:
			}
		case <-l.quit:
		}
	}
}

// call runs Prefill or Step, turning a panic into an error, and reports it.
func (l *DecodeLoop) call(prefill bool, seqs []*Seq, live, reserved int) (err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sched: decoder panic: %v", p)
		}
		if err != nil && l.runCtx.Err() != nil {
			err = ErrClosed
		}
		l.stepped.Add(1)
		l.cfg.Observer.Step(StepStats{Prefill: prefill, Size: len(seqs), Live: live, Reserved: reserved,
			Duration: time.Since(start), Err: err})
	}()
	if prefill {
		err = l.dec.Prefill(l.runCtx, seqs)
	} else {
		err = l.dec.Step(l.runCtx, seqs)
	}
	if err != nil {
		what := "step"
		if prefill {
			what = "prefill"
		}
		err = fmt.Errorf("sched: decoder %s: %w", what, err)
	}
	return err
}

// retire removes live sequences that must leave before the next step.
func (l *DecodeLoop) retire(live []*Seq, now time.Time, reserved *int) []*Seq {
	kept := live[:0]
	for _, s := range live {
		var reason FinishReason
		var err error
		switch {
		case s.ctx.Err() != nil:
			err = fmt.Errorf("sched: %w", s.ctx.Err())
		case s.stream.stop.Load():
			reason = FinishStopped
		case !s.Deadline.IsZero() && !now.Before(s.Deadline):
			reason = FinishTime
		default:
			kept = append(kept, s)
			continue
		}
		l.dec.Release(s)
		*reserved -= s.Cost
		l.end(s, reason, err)
	}
	clear(live[len(kept):])
	return kept
}

// finished removes sequences that ended in the last call (Decoder's Finish or MaxSteps).
func (l *DecodeLoop) finished(live []*Seq, reserved *int) []*Seq {
	kept := live[:0]
	for _, s := range live {
		reason := s.finish
		if reason == FinishNone && s.MaxSteps > 0 && s.steps >= s.MaxSteps {
			reason = FinishLength
		}
		if reason == FinishNone {
			kept = append(kept, s)
			continue
		}
		l.dec.Release(s)
		*reserved -= s.Cost
		l.end(s, reason, nil)
	}
	clear(live[len(kept):])
	return kept
}

// end delivers s's final event and releases its request's slot after its last sequence.
// The slot is released first, so a request that sees its last final event and admits the
// next request at once is not refused.
func (l *DecodeLoop) end(s *Seq, r FinishReason, err error) {
	if s.ticket.left.Add(-1) == 0 {
		l.admitted.Add(-1)
	}
	l.cfg.Observer.Finished(r, err, s.steps)
	s.stream.end(r, err)
}

// takePending moves started sequences to the loop. With stop set, Start fails from now on.
func (l *DecodeLoop) takePending(stop bool) []*Seq {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stop {
		l.stopped = true
	}
	p := l.pending
	l.pending = nil
	return p
}

// drained reports, after Close, whether the loop may exit: no admitted request can still
// start sequences. Admitted requests that have not started yet are waited for (they are
// tokenizing); the hard stop ends that wait.
func (l *DecodeLoop) drained() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 || l.admitted.Load() > 0 {
		return false
	}
	l.stopped = true
	return true
}

func (l *DecodeLoop) hardStopped() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}
