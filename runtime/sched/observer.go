package sched

import "time"

// BatchStats describes one finished batch.
type BatchStats struct {
	Size         int           // sequences
	Tokens       int           // real tokens
	PaddedTokens int           // longest × Size: what the model computed
	Inference    time.Duration // the session's Run
	// Prepare is the worker's time before Run (input tensors, output buffers) and Finish its
	// time after (splitting rows, reducers, waking requests): what overlapping batch
	// preparation with the previous Run could save at most.
	Prepare, Finish time.Duration
	// Dispatch is how long a free worker and queued work waited for each other before the
	// batch started: hold-back for requests still tokenizing, plus forming the batch and
	// waking the worker. It is what forming batches ahead of time could save at most.
	Dispatch time.Duration
	Solo     bool // ran on Config.Solo
	Err      error
}

// Observer receives scheduler metrics. Methods are called from scheduler goroutines and must
// not block.
type Observer interface {
	// Rejected counts a request refused by admission.
	Rejected()
	// Queued reports how long one sequence waited before its batch started.
	Queued(wait time.Duration)
	// Dropped counts a sequence removed before batching because its request was cancelled.
	Dropped()
	// Batch reports a finished batch.
	Batch(BatchStats)
}

type nopObserver struct{}

func (nopObserver) Rejected()            {}
func (nopObserver) Queued(time.Duration) {}
func (nopObserver) Dropped()             {}
func (nopObserver) Batch(BatchStats)     {}
