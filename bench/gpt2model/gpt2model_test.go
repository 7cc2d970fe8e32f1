package gpt2model

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/pipelines/textgen"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

// A small graph of the same construction runs under the text-generation decoder, and a
// sequence produces the same tokens alone and in a ragged, left-padded batch (the graph's
// padding and causal masks are right).
func TestGraphRunsAndMasks(t *testing.T) {
	dir, err := Ensure(testutil.Root(), t.TempDir(), Shape{Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, Positions: 128})
	if err != nil {
		t.Fatal(err)
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	sess, err := env.Open(context.Background(), dir+"/onnx/decoder_with_past_model.onnx", runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	run := func(maxBatch int, prompts [][]int32) [][]int32 {
		d, err := textgen.NewDecoder(sess, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := sched.NewDecodeLoop(d, sched.DecodeConfig{MaxBatchSize: maxBatch})
		defer l.Close(context.Background())
		out := make([][]int32, len(prompts))
		var wg sync.WaitGroup
		for i, p := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, _ := l.Admit()
				s := textgen.Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
				sts, err := tk.Start(context.Background(), &sched.Seq{Cost: 40, MaxSteps: 12, State: textgen.NewSequence(p, s, nil, 0)})
				if err != nil {
					t.Error(err)
					return
				}
				for {
					tok, err := sts[0].Next(context.Background())
					if err == io.EOF {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					out[i] = append(out[i], tok.ID)
				}
			}()
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
		return out
	}
	prompts := [][]int32{{5, 6, 7, 8, 9, 10, 11}, {3}, {42, 43, 44}, {100, 200, 300, 400, 500, 600, 700, 800, 900, 999}}
	alone := run(1, prompts)
	batched := run(8, prompts)
	for i := range prompts {
		if len(alone[i]) != 12 || fmt.Sprint(alone[i]) != fmt.Sprint(batched[i]) {
			t.Errorf("prompt %d: alone %v, batched %v", i, alone[i], batched[i])
		}
	}
}
