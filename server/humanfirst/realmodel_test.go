package humanfirst

import (
	"context"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/ort"
)

// TestFlowRealModel runs the platform's whole flow (train → classify → embed → unload →
// restart → delete) over mTLS with a real embedding model through the batching scheduler:
// the tiny sentence-transformers fixture (random weights, so this checks plumbing and
// determinism, not semantic quality).
func TestFlowRealModel(t *testing.T) {
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	repo, err := models.OpenDir(testutil.Fixture("tiny-bert-embeddings"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{Opener: env, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	runFlow(t, func() (pipelines.Embedder, pipelines.Info, error) { return m.Embedder, m.Info, nil }, false)
}
