package intent_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/runtime/sched"
)

// flaky refuses the first n calls with sched.ErrOverloaded.
type flaky struct {
	*intenttest.HashEmbedder
	refuse atomic.Int64
}

func (f *flaky) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	if f.refuse.Add(-1) >= 0 {
		return nil, pipelines.Stats{}, sched.ErrOverloaded
	}
	return f.HashEmbedder.Embed(ctx, texts, o)
}

// blocking waits for ctx on every call.
type blocking struct{ *intenttest.HashEmbedder }

func (b blocking) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	<-ctx.Done()
	return nil, pipelines.Stats{}, ctx.Err()
}

func TestEmbedTexts(t *testing.T) {
	texts := make([]string, 200)
	for i := range texts {
		texts[i] = fmt.Sprintf("phrase %d", i%150) // 50 duplicates
	}
	emb := &intenttest.HashEmbedder{}
	cache := intent.NewVectorCache(1 << 20)
	vecs, err := intent.EmbedTexts(context.Background(), emb, texts, intent.EmbedConfig{BatchSize: 16, Concurrency: 3, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 200 || emb.Texts.Load() != 150 || emb.Calls.Load() != 10 {
		t.Errorf("%d vectors from %d texts in %d calls", len(vecs), emb.Texts.Load(), emb.Calls.Load())
	}
	want, _, _ := emb.Embed(context.Background(), []string{"phrase 7"}, pipelines.EmbedOptions{})
	if fmt.Sprint(vecs[157]) != fmt.Sprint(want[0]) || fmt.Sprint(vecs[7]) != fmt.Sprint(want[0]) {
		t.Error("vector order broken")
	}
	// Everything is cached now.
	before := emb.Texts.Load()
	if _, err := intent.EmbedTexts(context.Background(), emb, texts[:100], intent.EmbedConfig{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if emb.Texts.Load() != before || cache.Len() != 150 {
		t.Errorf("cache missed: %d more texts embedded, %d cached", emb.Texts.Load()-before, cache.Len())
	}
	// A small budget evicts.
	small := intent.NewVectorCache(5 * (256*4 + 64 + 10))
	intent.EmbedTexts(context.Background(), emb, texts, intent.EmbedConfig{Cache: small})
	if small.Len() > 5 || small.Len() == 0 {
		t.Errorf("small cache holds %d", small.Len())
	}
}

func TestEmbedTextsErrors(t *testing.T) {
	// Overload: retried for long jobs, reported otherwise.
	f := &flaky{HashEmbedder: &intenttest.HashEmbedder{}}
	f.refuse.Store(3)
	if _, err := intent.EmbedTexts(context.Background(), f, []string{"a", "b"}, intent.EmbedConfig{RetryOverloaded: true}); err != nil {
		t.Errorf("retry: %v", err)
	}
	f.refuse.Store(1)
	if _, err := intent.EmbedTexts(context.Background(), f, []string{"a", "b"}, intent.EmbedConfig{}); !errors.Is(err, sched.ErrOverloaded) {
		t.Errorf("no retry: %v", err)
	}
	// Validation errors keep their type through the wrapping.
	_, err := intent.EmbedTexts(context.Background(), &intenttest.HashEmbedder{}, []string{"ok", " "}, intent.EmbedConfig{})
	var ve *pipelines.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("empty text: %v", err)
	}
	// Cancellation ends blocked calls.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	texts := make([]string, 500)
	for i := range texts {
		texts[i] = fmt.Sprint(i)
	}
	if _, err := intent.EmbedTexts(ctx, blocking{&intenttest.HashEmbedder{}}, texts, intent.EmbedConfig{RetryOverloaded: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

type panicky struct{ *intenttest.HashEmbedder }

func (panicky) Embed(context.Context, []string, pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	panic("boom")
}

func TestEmbedTextsPanic(t *testing.T) {
	_, err := intent.EmbedTexts(context.Background(), panicky{}, []string{"a"}, intent.EmbedConfig{})
	var pe *intent.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Errorf("err %v", err)
	}
}

func TestEmbedConfigFit(t *testing.T) {
	if c := (intent.EmbedConfig{}).Fit(pipelines.Info{MaxClientBatchSize: 8}); c.BatchSize != 8 || c.Concurrency != 4 {
		t.Errorf("fit to 8: %+v", c)
	}
	if c := (intent.EmbedConfig{BatchSize: 16}).Fit(pipelines.Info{}); c.BatchSize != 16 {
		t.Errorf("no limit: %+v", c)
	}
}
