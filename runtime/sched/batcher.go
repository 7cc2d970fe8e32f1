package sched

import (
	"context"
	"sort"
	"sync"
	"time"
)

// run is the batcher: the one goroutine that owns the queue. It hands a batch to a worker
// only when that worker is free, so a batch holds everything that arrived while the workers
// were busy; building a batch's tensors takes microseconds, so preparing it earlier would only
// freeze its membership sooner.
func (s *Scheduler) run() {
	defer close(s.done)
	quitCtx, cancelRunning := context.WithCancel(context.Background())
	defer cancelRunning()

	ready := make(chan *worker)
	var wg sync.WaitGroup
	workers := make([]*worker, s.cfg.Workers)
	for i := range workers {
		w := &worker{s: s, session: s.sessions[i%len(s.sessions)], batches: make(chan *batch, 1), base: quitCtx}
		workers[i] = w
		wg.Add(1)
		go w.loop(ready, &wg)
	}
	stopWorkers := func(idle []*worker) {
		for len(idle) < len(workers) {
			idle = append(idle, <-ready)
		}
		for _, w := range workers {
			close(w.batches)
		}
		wg.Wait()
	}

	var (
		queue   []*item
		idle    []*worker
		closed  = s.closed
		closing bool
		hold    *time.Timer
		holdC   <-chan time.Time
		poll    *time.Ticker
		pollC   <-chan time.Time
	)
	defer func() {
		if hold != nil {
			hold.Stop()
		}
		if poll != nil {
			poll.Stop()
		}
	}()

	for {
		queue = s.dropGone(queue)
		for len(idle) > 0 && len(queue) > 0 {
			if wait := s.holdFor(queue, closing); wait > 0 {
				if holdC == nil {
					hold = time.NewTimer(wait)
					holdC = hold.C
				}
				break
			}
			if holdC != nil {
				hold.Stop()
				holdC = nil
			}
			var b *batch
			b, queue = s.form(queue, len(idle))
			// Solo: nothing else runs, is queued or is about to be.
			b.solo = s.cfg.Solo != nil && s.running.Load() == 0 && len(queue) == 0 && s.tokenizing.Load() == 0
			w := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			s.running.Add(1)
			w.batches <- b // buffered and the worker is idle: never blocks
		}
		if closing && len(queue) == 0 && len(idle) == len(workers) && s.tokenizing.Load() == 0 {
			stopWorkers(idle)
			return
		}

		select {
		case sub := <-s.submit:
			sub.ticket.queued()
			queue = append(queue, sub.items...)
		case w := <-ready:
			idle = append(idle, w)
		case <-holdC:
			holdC = nil
		case <-pollC:
			// While closing, admitted requests may still be tokenizing; look again.
		case <-closed:
			closed, closing = nil, true
			poll = time.NewTicker(time.Millisecond)
			pollC = poll.C
		case <-s.quit:
			cancelRunning()
			for _, it := range queue {
				it.req.finish(it.index, Result{}, ErrClosed)
			}
			stopWorkers(idle)
			return
		}
	}
}

// dropGone removes sequences whose request was cancelled or timed out, failing them with the
// request's context error, before they can reach the model.
func (s *Scheduler) dropGone(queue []*item) []*item {
	kept := queue[:0]
	for _, it := range queue {
		if it.req.gone() {
			s.cfg.Observer.Dropped()
			err := it.req.ctx.Err()
			if err == nil {
				err = context.Canceled
			}
			it.req.finish(it.index, Result{}, err)
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept); i < len(queue); i++ {
		queue[i] = nil
	}
	return kept
}

// holdFor reports how long to hold the next batch back: only while requests that were
// admitted are still tokenizing (their sequences are about to arrive), the queue would not
// yet fill a batch, and the oldest sequence has waited less than MaxQueueDelay.
func (s *Scheduler) holdFor(queue []*item, closing bool) time.Duration {
	if closing || s.cfg.MaxQueueDelay <= 0 || s.tokenizing.Load() == 0 {
		return 0
	}
	if len(queue) >= s.cfg.MaxBatchSize {
		return 0
	}
	longest := 0
	for _, it := range queue {
		longest = max(longest, it.length())
	}
	if longest*(len(queue)+1) > s.cfg.MaxBatchTokens {
		return 0
	}
	return s.cfg.MaxQueueDelay - time.Since(queue[0].enqueued)
}

// form takes one batch out of queue for one of idle free workers. The oldest sequence always
// goes in, which bounds every sequence's wait; the rest come from the oldest SortWindow
// sequences, chosen by the planner among the nearest lengths (see plan.go) within
// MaxBatchTokens and MaxBatchSize. When several workers are free, the batch takes at most
// its share of the queue, so that the free workers run in parallel instead of one of them
// running everything while the others idle.
func (s *Scheduler) form(queue []*item, idle int) (*batch, []*item) {
	window := min(len(queue), s.cfg.SortWindow)
	order := s.order[:0]
	for i := 0; i < window; i++ {
		// Feature sequences only batch with compatible shapes (features.go).
		if s.layout.compatible(&queue[0].seq, &queue[i].seq) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return queue[order[a]].length() < queue[order[b]].length() })
	lens := s.lens[:0]
	anchor := 0
	for pos, qi := range order {
		lens = append(lens, queue[qi].length())
		if qi == 0 {
			anchor = pos
		}
	}
	s.order, s.lens = order, lens
	share := len(queue)
	if idle > 1 {
		share = (len(queue) + idle - 1) / idle
	}
	lo, hi := s.plan.group(lens, anchor, share)

	taken := s.taken[:0]
	for range window {
		taken = append(taken, false)
	}
	s.taken = taken
	b := &batch{items: make([]*item, 0, hi-lo+1), longest: lens[hi]}
	for pos := lo; pos <= hi; pos++ {
		taken[order[pos]] = true
	}
	rest := queue[:0]
	for i, it := range queue {
		if i < window && taken[i] {
			b.items = append(b.items, it)
			b.tokens += it.length()
			continue
		}
		rest = append(rest, it)
	}
	for i := len(rest); i < len(queue); i++ {
		queue[i] = nil
	}
	return b, rest
}
