package intent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
)

func holdoutAccuracy(t *testing.T, m *intent.Model, emb *intenttest.HashEmbedder, hold []intenttest.Labeled) float64 {
	t.Helper()
	texts := make([]string, len(hold))
	for i, h := range hold {
		texts[i] = h.Text
	}
	preds, err := m.Classify(context.Background(), emb, texts, intent.EmbedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i, p := range preds {
		if p.Intents[0].ID == hold[i].IntentID {
			ok++
		}
	}
	return float64(ok) / float64(len(hold))
}

// TestTrainQualitySynthetic trains on a synthetic intent set (20 intents × 30 phrases) and
// checks that the classifier fits its training data and generalises to held-out phrases far
// above chance (1/20). BenchmarkTrain runs the 50 × 40 case for timing.
func TestTrainQualitySynthetic(t *testing.T) {
	for _, head := range []intent.Head{intent.HeadLogReg, intent.HeadMLP} {
		t.Run(string(head), func(t *testing.T) {
			syn := intenttest.SyntheticWorkspace(20, 30, 10, false, 1)
			ws, err := intent.ParseWorkspace(syn.JSON)
			if err != nil {
				t.Fatal(err)
			}
			emb := &intenttest.HashEmbedder{}
			t0 := time.Now()
			var epochs int
			m, err := intent.Train(context.Background(), emb, ws, intent.TrainOptions{Head: head, Hidden: 64, Progress: func(p intent.Progress) { epochs++ }})
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(t0)
			acc := holdoutAccuracy(t, m, emb, syn.Holdout)
			t.Logf("%s: %v total (embed %v, fit %v), epochs %d best %d, train acc %.3f, val acc %.3f, holdout acc %.3f",
				head, el, m.Meta.Stats.EmbedTime, m.Meta.Stats.FitTime, m.Meta.Stats.Epochs, m.Meta.Stats.BestEpoch,
				m.Meta.Stats.TrainAcc, m.Meta.Stats.ValAcc, acc)
			if m.Meta.Stats.TrainAcc < 0.95 {
				t.Errorf("training accuracy %.3f < 0.95", m.Meta.Stats.TrainAcc)
			}
			if acc < 0.7 {
				t.Errorf("held-out accuracy %.3f", acc)
			}
			if epochs != m.Meta.Stats.Epochs {
				t.Errorf("progress reported %d epochs, stats %d", epochs, m.Meta.Stats.Epochs)
			}
		})
	}
}

func trainSpec(t *testing.T, o intent.TrainOptions) (*intent.Model, *intenttest.HashEmbedder) {
	t.Helper()
	ws, err := intent.ParseWorkspace(intenttest.SpecWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	emb := &intenttest.HashEmbedder{}
	m, err := intent.Train(context.Background(), emb, ws, o)
	if err != nil {
		t.Fatal(err)
	}
	return m, emb
}

// TestSpecFixture reproduces HumanFirst's reference test: the greet intent on top, the
// timeofday entity on "morning" at [14, 21).
func TestSpecFixture(t *testing.T) {
	for _, head := range []intent.Head{intent.HeadLogReg, intent.HeadMLP} {
		t.Run(string(head), func(t *testing.T) {
			m, emb := trainSpec(t, intent.TrainOptions{Head: head, Hidden: 64})
			preds, err := m.Classify(context.Background(), emb, []string{intenttest.SpecUtterance}, intent.EmbedConfig{})
			if err != nil {
				t.Fatal(err)
			}
			p := preds[0]
			if p.Intents[0].ID != intenttest.SpecGreetIntentID {
				t.Errorf("top intent %+v, want greet", p.Intents[0])
			}
			var sum float32
			for i, s := range p.Intents {
				sum += s.Score
				if s.Score < 0 || s.Score > 1 || (i > 0 && s.Score > p.Intents[i-1].Score) {
					t.Errorf("scores not sorted probabilities: %+v", p.Intents)
				}
			}
			if sum < 0.999 || sum > 1.001 {
				t.Errorf("probabilities sum to %v", sum)
			}
			if len(p.Entities) != 1 {
				t.Fatalf("entities %+v", p.Entities)
			}
			e := p.Entities[0]
			if e.EntityID != intenttest.SpecTimeEntityID || e.ValueID != intenttest.SpecMorningValue || e.Text != "morning" ||
				e.Start != intenttest.SpecMorningStart || e.End != intenttest.SpecMorningEnd || e.EntityName != "timeofday" || e.Value != "morning" {
				t.Errorf("entity %+v", e)
			}
		})
	}
}

func TestTrainDeterministic(t *testing.T) {
	syn := intenttest.SyntheticWorkspace(6, 10, 0, false, 3)
	ws, err := intent.ParseWorkspace(syn.JSON)
	if err != nil {
		t.Fatal(err)
	}
	save := func(procs int, seed uint64) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		m, err := intent.Train(context.Background(), &intenttest.HashEmbedder{}, ws, intent.TrainOptions{Head: intent.HeadMLP, Hidden: 16, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		m.Meta.ID = "m"
		dir, err := m.Save(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "weights.bin"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := save(1, 7), save(4, 7)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different weights with 1 and 4 cores")
	}
	if bytes.Equal(a, save(2, 8)) {
		t.Error("different seeds gave identical weights")
	}
}

func TestTrainCancel(t *testing.T) {
	syn := intenttest.SyntheticWorkspace(10, 20, 0, false, 3)
	ws, _ := intent.ParseWorkspace(syn.JSON)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var epochs int
	_, err := intent.Train(ctx, &intenttest.HashEmbedder{}, ws, intent.TrainOptions{Progress: func(p intent.Progress) {
		epochs++
		if p.Epoch == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if epochs != 2 {
		t.Errorf("%d epochs ran after cancelling at epoch 2", epochs)
	}
}

func TestTrainEdgeCases(t *testing.T) {
	emb := &intenttest.HashEmbedder{}
	ws, _ := intent.ParseWorkspace([]byte(`{"intents":[{"id":"a"}],"examples":[{"text":"x"}]}`))
	if _, err := intent.Train(context.Background(), emb, ws, intent.TrainOptions{}); !errors.Is(err, intent.ErrInvalidWorkspace) {
		t.Errorf("no labeled phrases: %v", err)
	}
	if _, err := intent.Train(context.Background(), emb, ws, intent.TrainOptions{Head: "svm"}); err == nil {
		t.Error("unknown head accepted")
	}
	// One intent: always that intent, with probability 1.
	ws, _ = intent.ParseWorkspace([]byte(`{"intents":[{"id":"a"}],"examples":[{"text":"hello there","intents":[{"intent_id":"a"}]}]}`))
	m, err := intent.Train(context.Background(), emb, ws, intent.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Classify(context.Background(), emb, []string{"anything"}, intent.EmbedConfig{})
	if err != nil || p[0].Intents[0].ID != "a" || p[0].Intents[0].Score != 1 {
		t.Errorf("single intent: %+v, %v", p, err)
	}
}

// BenchmarkTrain times TrainModel's work on the synthetic 50-intent × 40-phrase workspace with
// the hashing embedder (so it measures parsing and the classifier, not a real model).
func BenchmarkTrain(b *testing.B) {
	syn := intenttest.SyntheticWorkspace(50, 40, 0, false, 1)
	for _, head := range []intent.Head{intent.HeadLogReg, intent.HeadMLP} {
		b.Run(string(head), func(b *testing.B) {
			var st intent.TrainStats
			for b.Loop() {
				ws, err := intent.ParseWorkspace(syn.JSON)
				if err != nil {
					b.Fatal(err)
				}
				m, err := intent.Train(context.Background(), &intenttest.HashEmbedder{}, ws, intent.TrainOptions{Head: head})
				if err != nil {
					b.Fatal(err)
				}
				st = m.Meta.Stats
			}
			b.ReportMetric(float64(st.Epochs), "epochs")
			b.ReportMetric(st.TrainAcc, "train-acc")
		})
	}
}
