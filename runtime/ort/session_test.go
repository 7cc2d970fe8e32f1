package ort

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/runtime"
)

type embeddingsGolden struct {
	InputIDs      [][]int64   `json:"input_ids"`
	AttentionMask [][]int64   `json:"attention_mask"`
	FirstToken    [][]float64 `json:"last_hidden_state_first_token"`
}

func newEnv(t *testing.T) *Environment {
	t.Helper()
	env, err := NewEnvironment("")
	if err != nil {
		t.Fatalf("NewEnvironment: %v", err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func loadEmbeddings(t *testing.T) (runtime.Session, embeddingsGolden) {
	t.Helper()
	env := newEnv(t)
	var g embeddingsGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	// A relative path: Open must resolve it (and the external data beside it) itself.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := env.Open(context.Background(), rel, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess, g
}

func batchInputs(info runtime.ModelInfo, ids, mask [][]int64) []runtime.Tensor {
	n, s := int64(len(ids)), int64(len(ids[0]))
	flat := func(rows [][]int64) []int64 {
		out := make([]int64, 0, n*s)
		for _, r := range rows {
			out = append(out, r...)
		}
		return out
	}
	in := make([]runtime.Tensor, len(info.Inputs))
	for i, v := range info.Inputs {
		switch v.Name {
		case "input_ids":
			in[i] = runtime.NewTensor([]int64{n, s}, flat(ids))
		case "attention_mask":
			in[i] = runtime.NewTensor([]int64{n, s}, flat(mask))
		default:
			in[i] = runtime.Zeros[int64](n, s)
		}
	}
	return in
}

func TestInfoDiscoversInputsAndOutputs(t *testing.T) {
	sess, _ := loadEmbeddings(t)
	info := sess.Info()
	for _, name := range []string{"input_ids", "attention_mask", "token_type_ids"} {
		i := info.Input(name)
		if i < 0 {
			t.Fatalf("input %q missing from %+v", name, info.Inputs)
		}
		if got := info.Inputs[i].DType; got != runtime.Int64 {
			t.Errorf("input %q dtype %s, want int64", name, got)
		}
	}
	o := info.Output("last_hidden_state")
	if o < 0 {
		t.Fatalf("output last_hidden_state missing from %+v", info.Outputs)
	}
	if got := info.Outputs[o].Shape; len(got) != 3 || got[2] != 32 {
		t.Errorf("last_hidden_state shape %v, want [?,?,32]", got)
	}
}

// TestRunMatchesGolden runs the external-data model on the reference batch and compares the
// first token's hidden state with transformers.
func TestRunMatchesGolden(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	out := make([]runtime.Tensor, len(info.Outputs))
	if err := sess.Run(context.Background(), batchInputs(info, g.InputIDs, g.AttentionMask), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h := out[info.Output("last_hidden_state")]
	n, s := int64(len(g.InputIDs)), int64(len(g.InputIDs[0]))
	if want := []int64{n, s, 32}; !equalShape(h.Shape, want) {
		t.Fatalf("shape %v, want %v", h.Shape, want)
	}
	data := h.Float32s()
	for i := range g.FirstToken {
		row := data[int64(i)*s*32 : int64(i)*s*32+32]
		testutil.AssertClose(t, "first token of sentence", row, g.FirstToken[i], 1e-4)
	}
}

// TestRunPreallocatedOutput writes into a caller-owned buffer.
func TestRunPreallocatedOutput(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	if len(info.Outputs) != 1 {
		t.Skipf("fixture has %d outputs", len(info.Outputs))
	}
	n, s := int64(len(g.InputIDs)), int64(len(g.InputIDs[0]))
	buf := runtime.Zeros[float32](n, s, 32)
	out := []runtime.Tensor{buf}
	if err := sess.Run(context.Background(), batchInputs(info, g.InputIDs, g.AttentionMask), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	testutil.AssertClose(t, "preallocated first token", buf.Float32s()[:32], g.FirstToken[0], 1e-4)
}

func TestConcurrentRuns(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			i := w % len(g.InputIDs)
			for k := 0; k < 20; k++ {
				out := make([]runtime.Tensor, len(info.Outputs))
				if err := sess.Run(context.Background(), batchInputs(info, g.InputIDs[i:i+1], g.AttentionMask[i:i+1]), out); err != nil {
					errs <- err
					return
				}
				if d := testutil.MaxAbsDiff(out[0].Float32s()[:32], g.FirstToken[i]); d > 1e-4 {
					errs <- errors.New("wrong result under concurrency")
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunHonoursCancelledContext(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := sess.Run(ctx, batchInputs(info, g.InputIDs, g.AttentionMask), make([]runtime.Tensor, len(info.Outputs)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with cancelled ctx: %v, want context.Canceled", err)
	}
}

// TestRunTerminatesMidway cancels while ONNX Runtime is working on a large batch; Run must
// return a context error (not crash) and the session must stay usable.
func TestRunTerminatesMidway(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	// 256 copies of the reference batch: long enough that a 1 ms deadline lands mid-run.
	var ids, mask [][]int64
	for k := 0; k < 256; k++ {
		ids = append(ids, g.InputIDs...)
		mask = append(mask, g.AttentionMask...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	start := time.Now()
	err := sess.Run(ctx, batchInputs(info, ids, mask), make([]runtime.Tensor, len(info.Outputs)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want deadline exceeded (took %v)", err, time.Since(start))
	}
	out := make([]runtime.Tensor, len(info.Outputs))
	if err := sess.Run(context.Background(), batchInputs(info, g.InputIDs[:1], g.AttentionMask[:1]), out); err != nil {
		t.Fatalf("Run after termination: %v", err)
	}
	testutil.AssertClose(t, "after termination", out[0].Float32s()[:32], g.FirstToken[0], 1e-4)
}

func TestClosedSession(t *testing.T) {
	sess, g := loadEmbeddings(t)
	info := sess.Info()
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err := sess.Run(context.Background(), batchInputs(info, g.InputIDs[:1], g.AttentionMask[:1]), make([]runtime.Tensor, len(info.Outputs)))
	if !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Run on closed session: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	if _, err := env.Open(ctx, filepath.Join(t.TempDir(), "missing.onnx"), runtime.Options{}); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if _, err := env.Open(ctx, bad, runtime.Options{}); err == nil {
		t.Error("Open of garbage succeeded")
	}
	model := testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx")
	if _, err := env.Open(ctx, model, runtime.Options{Outputs: []string{"nope"}}); err == nil {
		t.Error("Open with an unknown output succeeded")
	}
	if _, err := env.Open(ctx, model, runtime.Options{Optimization: "fast"}); err == nil {
		t.Error("Open with an unknown optimisation level succeeded")
	}
}

func TestFindLibraryHonoursEnv(t *testing.T) {
	t.Setenv(LibraryEnv, filepath.Join(t.TempDir(), "nope.so"))
	if _, err := FindLibrary(); err == nil {
		t.Error("FindLibrary accepted a missing INFERGO_ORT_LIB")
	}
	lib := filepath.Join(t.TempDir(), "lib.so")
	os.WriteFile(lib, nil, 0o644)
	t.Setenv(LibraryEnv, lib)
	if got, err := FindLibrary(); err != nil || got != lib {
		t.Errorf("FindLibrary = %q, %v; want %q", got, err, lib)
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRunSessionOptionVariants: the options the benchmarks compare (memory pattern on, CPU
// arena off) configure a session that still matches transformers.
func TestRunSessionOptionVariants(t *testing.T) {
	env := newEnv(t)
	var g embeddingsGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	for name, o := range map[string]runtime.Options{
		"memory pattern": {IntraOpThreads: 1, MemPattern: true},
		"no arena":       {IntraOpThreads: 1, NoArena: true},
		"spinning stop":  {IntraOpThreads: 2, StopSpinningAfterRun: true},
	} {
		sess, err := env.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), o)
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		info := sess.Info()
		out := make([]runtime.Tensor, len(info.Outputs))
		if err := sess.Run(context.Background(), batchInputs(info, g.InputIDs, g.AttentionMask), out); err != nil {
			t.Fatalf("%s: Run: %v", name, err)
		}
		s := int64(len(g.InputIDs[0]))
		data := out[info.Output("last_hidden_state")].Float32s()
		for i := range g.FirstToken {
			testutil.AssertClose(t, name+": first token", data[int64(i)*s*32:int64(i)*s*32+32], g.FirstToken[i], 1e-4)
		}
		sess.Close()
	}
}
