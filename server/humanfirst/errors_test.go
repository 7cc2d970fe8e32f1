package humanfirst

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

// switchable is an embedder whose behaviour a test changes while the server runs.
type switchable struct {
	*intenttest.HashEmbedder
	mode    atomic.Value // "", "overloaded", "panic", "block"
	entered chan struct{}
	release chan struct{} // closing it ends "block" with a normal answer
}

func newSwitchable() *switchable {
	s := &switchable{HashEmbedder: &intenttest.HashEmbedder{}, entered: make(chan struct{}, 100), release: make(chan struct{})}
	s.mode.Store("")
	return s
}

func (s *switchable) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	switch s.mode.Load() {
	case "overloaded":
		return nil, pipelines.Stats{}, sched.ErrOverloaded
	case "panic":
		panic("embedder bug")
	case "block":
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return nil, pipelines.Stats{}, ctx.Err()
		case <-s.release:
		}
	}
	return s.HashEmbedder.Embed(ctx, texts, o)
}

func (s *switchable) provider() EmbedderProvider {
	return func() (pipelines.Embedder, pipelines.Info, error) { return s, s.Info(), nil }
}

func TestErrorCodes(t *testing.T) {
	emb := newSwitchable()
	var servedID atomic.Value
	servedID.Store("intenttest/hash")
	var unavailable atomic.Bool
	provider := func() (pipelines.Embedder, pipelines.Info, error) {
		if unavailable.Load() {
			return nil, pipelines.Info{}, errors.New("model still loading")
		}
		info := emb.Info()
		info.ModelID = servedID.Load().(string)
		return emb, info, nil
	}
	ts := startServer(t, Config{Embedder: provider, ClassifyBatchSize: 5}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	model := trainAsPlatform(t, ctx, c, intenttest.SpecWorkspace)
	hf := configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON
	train := func(f configpb.IntentsDataFormat, o *configpb.IntentsDataOptions, data string) error {
		_, err := c.models.TrainModel(ctx, &integrationpb.TrainModelRequest{DataFormat: f, FormatOptions: o, Data: []byte(data)})
		return err
	}
	cases := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"csv format", func() error { return train(configpb.IntentsDataFormat_INTENTS_FORMAT_CSV_SIMPLE_INTENTS, nil, "{}") }, codes.InvalidArgument, "INTENTS_FORMAT_CSV_SIMPLE_INTENTS"},
		{"zip", func() error { return train(hf, &configpb.IntentsDataOptions{ZipEncoding: true}, "{}") }, codes.InvalidArgument, "zip"},
		{"empty data", func() error { return train(hf, nil, "") }, codes.InvalidArgument, "data is empty"},
		{"bad json", func() error { return train(hf, nil, `{"intents": [}`) }, codes.InvalidArgument, "invalid JSON"},
		{"unknown intent", func() error {
			return train(hf, nil, `{"intents":[{"id":"a"}],"examples":[{"text":"x","intents":[{"intent_id":"b"}]}]}`)
		}, codes.InvalidArgument, `examples[0].intents[0].intent_id: unknown intent "b"`},
		{"no labels", func() error { return train(0, nil, `{"intents":[{"id":"a"}],"examples":[{"text":"x"}]}`) }, codes.InvalidArgument, "no labeled training phrases"},
		{"unknown model", func() error { _, err := classify(ctx, c, "clf-aaaaaaaaaaaaaaaa", "hi"); return err }, codes.NotFound, "clf-aaaaaaaaaaaaaaaa"},
		{"malformed model", func() error { _, err := classify(ctx, c, "../../etc", "hi"); return err }, codes.NotFound, ""},
		{"get unknown", func() error {
			_, err := c.models.GetModel(ctx, &integrationpb.GetModelRequest{ModelId: "nope"})
			return err
		}, codes.NotFound, ""},
		{"embed unknown", func() error {
			_, err := c.models.Embed(ctx, &integrationpb.EmbedRequest{ModelId: "nope", Examples: []string{"x"}})
			return err
		}, codes.NotFound, ""},
		{"embed empty text", func() error {
			_, err := c.models.Embed(ctx, &integrationpb.EmbedRequest{Examples: []string{"x", ""}})
			return err
		}, codes.InvalidArgument, "empty input"},
		{"delete malformed", func() error {
			_, err := c.models.DeleteModel(ctx, &integrationpb.DeleteModelRequest{ModelId: "../x"})
			return err
		}, codes.InvalidArgument, "malformed"},
		{"batch too large", func() error { _, err := classify(ctx, c, model.GetId(), "a", "b", "c", "d", "e", "f"); return err }, codes.InvalidArgument, "limit is 5"},
		{"overloaded", func() error {
			emb.mode.Store("overloaded")
			defer emb.mode.Store("")
			_, err := classify(ctx, c, model.GetId(), "a new phrase")
			return err
		}, codes.ResourceExhausted, "overloaded"},
		{"no embedder", func() error {
			unavailable.Store(true)
			defer unavailable.Store(false)
			_, err := classify(ctx, c, model.GetId(), "hi")
			return err
		}, codes.Unavailable, "model still loading"},
		{"embedder swapped", func() error {
			servedID.Store("another/model")
			defer servedID.Store("intenttest/hash")
			_, err := classify(ctx, c, model.GetId(), "hi")
			return err
		}, codes.FailedPrecondition, "train it again"},
		{"panic", func() error {
			emb.mode.Store("panic")
			defer emb.mode.Store("")
			_, err := classify(ctx, c, model.GetId(), "yet another phrase")
			return err
		}, codes.Internal, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
	// A panic on the handler's own goroutine (here in the provider) is recovered too.
	unavailable.Store(false)
	panicky := startServer(t, Config{Embedder: func() (pipelines.Embedder, pipelines.Info, error) { panic("provider bug") }}, nil)
	if _, err := panicky.clients(t).models.ListModels(ctx, &integrationpb.ListModelsRequest{}); status.Code(err) != codes.Internal {
		t.Errorf("panicking provider: %v", err)
	}
	if _, err := panicky.clients(t).discovery.GetCapabilities(ctx, &integrationpb.GetCapabilitiesRequest{}); err != nil {
		t.Errorf("after the provider panic: %v", err)
	}
	// The server survived the panic.
	if _, err := classify(ctx, c, model.GetId(), "hello"); err != nil {
		t.Errorf("after panic: %v", err)
	}
}

func TestToStatusTable(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{pipelines.Invalidf("inputs", "too long"), codes.InvalidArgument},
		{pipelines.EmptyError("inputs", "empty"), codes.InvalidArgument},
		{fmt.Errorf("x: %w", intent.ErrInvalidWorkspace), codes.InvalidArgument},
		{fmt.Errorf("x: %w", sched.ErrOverloaded), codes.ResourceExhausted},
		{sched.ErrClosed, codes.Unavailable},
		{fmt.Errorf("x: %w", intent.ErrBadModel), codes.DataLoss},
		{&intent.PanicError{Value: 1}, codes.Internal},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{errors.New("disk on fire"), codes.Internal},
	}
	for _, c := range cases {
		if got := toStatus(c.err).Code(); got != c.code {
			t.Errorf("%v: %v, want %v", c.err, got, c.code)
		}
	}
	if msg := toStatus(errors.New("/secret/path broke")).Message(); strings.Contains(msg, "secret") {
		t.Errorf("internal detail leaked: %q", msg)
	}
}

// TestTrainCancellation cancels TrainModel while it embeds, lets a deadline expire, and
// cancels a call still waiting for a training slot: each ends with the right code and leaves
// nothing in the models directory.
func TestTrainCancellation(t *testing.T) {
	emb := newSwitchable()
	var hook atomic.Value // func(intent.Progress)
	progress := func(p intent.Progress) {
		if f, ok := hook.Load().(func(intent.Progress)); ok {
			f(p)
		}
	}
	ts := startServer(t, Config{Embedder: emb.provider(), MaxConcurrentTrainings: 1, Train: intent.TrainOptions{Progress: progress}}, nil)
	c := ts.clients(t)
	syn := intenttest.SyntheticWorkspace(10, 20, 0, false, 1)
	req := &integrationpb.TrainModelRequest{DataFormat: configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON, Data: syn.JSON}
	modelsDir := filepath.Join(ts.dir, "models")
	assertEmpty := func() {
		t.Helper()
		waitFor(t, "training to stop", func() bool { return ts.training.Load() == 0 })
		if entries, _ := os.ReadDir(modelsDir); len(entries) != 0 {
			t.Errorf("models directory holds %v", entries)
		}
	}

	emb.mode.Store("block")
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	go func() { _, err := c.models.TrainModel(ctx, req); errc <- err }()
	<-emb.entered
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("cancelled: %v", err)
	}
	assertEmpty()

	dctx, dcancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer dcancel()
	if _, err := c.models.TrainModel(dctx, req); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("deadline: %v", err)
	}
	assertEmpty()

	// One training holds the only slot; a second caller gives up while waiting.
	hold, release := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.models.TrainModel(hold, req) }()
	<-emb.entered
	wctx, wcancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer wcancel()
	if _, err := c.models.TrainModel(wctx, req); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("waiting for a slot: %v", err)
	}
	release()
	wg.Wait()
	assertEmpty()

	// Cancellation during the optimiser (after embedding): the Progress hook cancels.
	emb.mode.Store("")
	octx, ocancel := context.WithCancel(testCtx(t))
	hook.Store(func(p intent.Progress) {
		if p.Epoch == 2 {
			ocancel()
		}
	})
	if _, err := c.models.TrainModel(octx, req); status.Code(err) != codes.Canceled {
		t.Errorf("cancelled in the optimiser: %v", err)
	}
	assertEmpty()
}

// TestGracefulStop: an RPC in flight when GracefulStop starts completes; Stop during a
// training cancels it.
func TestGracefulStop(t *testing.T) {
	emb := newSwitchable()
	ts := startServer(t, Config{Embedder: emb.provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	model := trainAsPlatform(t, ctx, c, intenttest.SpecWorkspace)

	// A classify blocked in the embedder while GracefulStop waits for it.
	emb.mode.Store("block")
	errc := make(chan error, 1)
	go func() { _, err := classify(ctx, c, model.GetId(), "a phrase never seen"); errc <- err }()
	<-emb.entered
	stopped := make(chan struct{})
	go func() { ts.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with an RPC in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(emb.release)
	if err := <-errc; err != nil {
		t.Errorf("in-flight classify: %v", err)
	}
	<-stopped
	if _, err := c.discovery.GetCapabilities(ctx, &integrationpb.GetCapabilitiesRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("after stop: %v", err)
	}
}

func TestShutdownFallsBackToStop(t *testing.T) {
	emb := newSwitchable()
	ts := startServer(t, Config{Embedder: emb.provider()}, nil)
	c := ts.clients(t)
	emb.mode.Store("block")
	errc := make(chan error, 1)
	go func() {
		_, err := c.models.TrainModel(testCtx(t), &integrationpb.TrainModelRequest{Data: intenttest.SpecWorkspace})
		errc <- err
	}()
	<-emb.entered
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-errc; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("training during hard stop: %v", err)
	}
	waitFor(t, "training to stop", func() bool { return ts.training.Load() == 0 })
	if entries, _ := os.ReadDir(filepath.Join(ts.dir, "models")); len(entries) != 0 {
		t.Errorf("models directory holds %v", entries)
	}
}
