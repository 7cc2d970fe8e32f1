package intent

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/sched"
)

// EmbedConfig controls how texts reach the Embedder. The zero value is usable.
type EmbedConfig struct {
	// BatchSize is the number of texts per Embed call (default 32). Calls run concurrently so
	// the scheduler can batch across them; it also bounds the client batch size the
	// Embedder sees.
	BatchSize int
	// Concurrency is the number of Embed calls in flight (default 4).
	Concurrency int
	// RetryOverloaded retries calls refused with sched.ErrOverloaded, with backoff, until ctx
	// ends. Long jobs (training, evaluation) set it so a burst of HTTP traffic does not fail
	// them; interactive calls leave it off and report the overload.
	RetryOverloaded bool
	// Cache, when set, serves and stores vectors by text. It must belong to the Embedder in
	// use: callers keep one cache per embedding model.
	Cache *VectorCache
}

// Fit adapts c to a served model: batches no larger than the model's client batch limit.
func (c EmbedConfig) Fit(info pipelines.Info) EmbedConfig {
	c = c.withDefaults()
	if info.MaxClientBatchSize > 0 {
		c.BatchSize = min(c.BatchSize, info.MaxClientBatchSize)
	}
	return c
}

func (c EmbedConfig) withDefaults() EmbedConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 32
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	return c
}

// embedOptions are the pipeline options for every intent embedding: long phrases are cut to
// the model's maximum rather than failing a whole training run.
var embedOptions = pipelines.EmbedOptions{Truncate: true}

// EmbedTexts returns one vector per text, in order. Duplicate texts are embedded once and
// share a vector; callers must not modify the returned vectors (they may also live in the
// cache). Vectors must all have the same length.
func EmbedTexts(ctx context.Context, emb pipelines.Embedder, texts []string, cfg EmbedConfig) ([][]float32, error) {
	cfg = cfg.withDefaults()
	out := make([][]float32, len(texts))
	// Dedupe and consult the cache; todo holds the distinct texts still to embed.
	first := make(map[string]int, len(texts))
	var todo []string
	for i, t := range texts {
		if _, ok := first[t]; ok {
			continue
		}
		first[t] = i
		if cfg.Cache != nil {
			if v, ok := cfg.Cache.Get(t); ok {
				out[i] = v
				continue
			}
		}
		todo = append(todo, t)
	}
	vecs := make([][]float32, len(todo))
	if len(todo) > 0 {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sem := make(chan struct{}, cfg.Concurrency)
		var wg sync.WaitGroup
		var once sync.Once
		var firstErr error
	loop:
		for lo := 0; lo < len(todo); lo += cfg.BatchSize {
			hi := min(lo+cfg.BatchSize, len(todo))
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				defer func() { <-sem }()
				// A panicking embedder must not take the process down from this goroutine,
				// where no RPC interceptor can recover it: it becomes this call's error.
				defer func() {
					if r := recover(); r != nil {
						err := &PanicError{Value: r, Stack: debug.Stack()}
						once.Do(func() { firstErr = err; cancel() })
					}
				}()
				v, err := embedChunk(ctx, emb, todo[lo:hi], cfg.RetryOverloaded)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				copy(vecs[lo:hi], v)
			}(lo, hi)
		}
		wg.Wait()
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		if firstErr != nil {
			return nil, firstErr
		}
	}
	for i, t := range todo {
		if cfg.Cache != nil {
			cfg.Cache.Put(t, vecs[i])
		}
		out[first[t]] = vecs[i]
	}
	dim := -1
	for i, t := range texts {
		if out[i] == nil {
			out[i] = out[first[t]]
		}
		if dim < 0 {
			dim = len(out[i])
		}
		if len(out[i]) != dim || dim == 0 {
			return nil, fmt.Errorf("intent: embedder returned a %d-dim vector after %d-dim ones", len(out[i]), dim)
		}
	}
	return out, nil
}

func embedChunk(ctx context.Context, emb pipelines.Embedder, texts []string, retry bool) ([][]float32, error) {
	backoff := 5 * time.Millisecond
	for {
		v, _, err := emb.Embed(ctx, texts, embedOptions)
		if err == nil {
			if len(v) != len(texts) {
				return nil, fmt.Errorf("intent: embedder returned %d vectors for %d texts", len(v), len(texts))
			}
			return v, nil
		}
		if !retry || !errors.Is(err, sched.ErrOverloaded) {
			return nil, fmt.Errorf("embed %d texts: %w", len(texts), err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// PanicError reports a panic recovered in a goroutine EmbedTexts started (a bug in the
// embedder); transports answer it as an internal error.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("intent: embedder panicked: %v", e.Value) }

// VectorCache is a bounded LRU of embeddings by text, safe for concurrent use. HumanFirst
// evaluates by training on k folds of the same phrases and classifying the held-out ones, so
// after the first fold almost every phrase is already embedded.
type VectorCache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	ll       *list.List
	items    map[string]*list.Element
}

type cacheEntry struct {
	text string
	vec  []float32
}

// NewVectorCache returns a cache holding at most maxBytes of vectors and keys.
func NewVectorCache(maxBytes int64) *VectorCache {
	return &VectorCache{maxBytes: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

func entrySize(text string, vec []float32) int64 { return int64(len(text) + 4*len(vec) + 64) }

// Get returns the cached vector for text. The vector is shared: do not modify it.
func (c *VectorCache) Get(text string) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[text]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheEntry).vec, true
}

// Put stores vec for text, evicting the least recently used entries over the budget.
func (c *VectorCache) Put(text string, vec []float32) {
	size := entrySize(text, vec)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[text]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[text] = c.ll.PushFront(&cacheEntry{text: text, vec: vec})
	c.bytes += size
	for c.bytes > c.maxBytes {
		el := c.ll.Back()
		e := el.Value.(*cacheEntry)
		c.ll.Remove(el)
		delete(c.items, e.text)
		c.bytes -= entrySize(e.text, e.vec)
	}
}

// Len returns the number of cached vectors.
func (c *VectorCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
