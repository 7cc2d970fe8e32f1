package pipelines

import (
	"context"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

type embeddingsGolden struct {
	Sentences      []string    `json:"sentences"`
	InputIDs       [][]int64   `json:"input_ids"`
	AttentionMask  [][]int64   `json:"attention_mask"`
	MeanPooled     [][]float64 `json:"mean_pooled"`
	MeanNormalized [][]float64 `json:"mean_pooled_normalized"`
	CLSPooled      [][]float64 `json:"cls_pooled"`
	Similarity     struct {
		Source    string    `json:"source_sentence"`
		Sentences []string  `json:"sentences"`
		Scores    []float64 `json:"scores"`
	} `json:"sentence_similarity"`
}

func loadEmbeddingsGolden(t *testing.T) embeddingsGolden {
	t.Helper()
	var g embeddingsGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	return g
}

// TestPoolingThroughSchedulerMatchesGolden feeds the reference token ids through the real
// model and the scheduler (batched, unpadded rows back) and checks each pooling mode against
// sentence-transformers' outputs.
func TestPoolingThroughSchedulerMatchesGolden(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	sess, err := env.Open(context.Background(), testutil.Fixture("tiny-bert-embeddings", "onnx", "model.onnx"), runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	s, err := sched.New([]runtime.Session{sess}, sched.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	seqs := make([]sched.Sequence, len(g.InputIDs))
	for i, row := range g.InputIDs {
		for p, id := range row {
			if g.AttentionMask[i][p] == 1 {
				seqs[i].IDs = append(seqs[i].IDs, int32(id))
			}
		}
	}
	res, err := s.Submit(context.Background(), seqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		rows := r.Outputs[0].Float32s()
		mean, err := pool(models.PoolMean, rows, 32)
		if err != nil {
			t.Fatal(err)
		}
		testutil.AssertClose(t, "mean pooled "+g.Sentences[i][:min(20, len(g.Sentences[i]))], mean, g.MeanPooled[i], 1e-4)
		normalize(mean)
		testutil.AssertClose(t, "mean normalized", mean, g.MeanNormalized[i], 1e-4)
		cls, _ := pool(models.PoolCLS, rows, 32)
		testutil.AssertClose(t, "cls pooled", cls, g.CLSPooled[i], 1e-4)
	}
}

func TestPoolModes(t *testing.T) {
	rows := []float32{1, -2, 3, 4, -5, 6, 0, 8} // 4 tokens × 2
	cases := map[models.Pooling][]float32{
		models.PoolCLS:       {1, -2},
		models.PoolLastToken: {0, 8},
		models.PoolMax:       {3, 8},
		models.PoolMean:      {-0.25, 4},
		models.PoolMeanSqrt:  {-0.5, 8},
	}
	for mode, want := range cases {
		got, err := pool(mode, rows, 2)
		if err != nil {
			t.Fatal(err)
		}
		testutil.AssertClose(t, string(mode), got, want, 1e-6)
	}
	if _, err := pool("weird", rows, 2); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := pool(models.PoolMean, rows, 3); err == nil {
		t.Error("ragged rows accepted")
	}
}

func TestNormalizeAndCosine(t *testing.T) {
	v := []float32{3, 4}
	normalize(v)
	testutil.AssertClose(t, "normalize", v, []float32{0.6, 0.8}, 1e-7)
	z := []float32{0, 0}
	normalize(z)
	testutil.AssertClose(t, "zero vector", z, []float32{0, 0}, 0)
	if c := cosine([]float32{1, 0}, []float32{0, 2}); c != 0 {
		t.Errorf("orthogonal cosine %v", c)
	}
	if c := cosine([]float32{1, 1}, []float32{2, 2}); c < 0.9999999 {
		t.Errorf("parallel cosine %v", c)
	}
	if c := cosine([]float32{0, 0}, []float32{2, 2}); c != 0 {
		t.Errorf("zero cosine %v", c)
	}
}
