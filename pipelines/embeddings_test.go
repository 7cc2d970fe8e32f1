package pipelines

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

// testEnv is an ONNX Runtime environment closed when the test ends.
func testEnv(t *testing.T) *ort.Environment {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// loadFixture loads a fixture repo with o (see loadDir).
func loadFixture(t *testing.T, fixture string, o LoadOptions) *Model {
	t.Helper()
	return loadDir(t, testutil.Fixture(fixture), o)
}

// loadDir loads the repo in dir with o: without an Opener on a fresh environment, with one
// intra-op thread unless o says otherwise. The model is closed when the test ends.
func loadDir(t *testing.T, dir string, o LoadOptions) *Model {
	t.Helper()
	repo, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.Opener == nil {
		o.Opener = testEnv(t)
	}
	if o.Runtime.IntraOpThreads == 0 {
		o.Runtime.IntraOpThreads = 1
	}
	m, err := Load(context.Background(), repo, o)
	if err != nil {
		t.Fatalf("Load %s: %v", dir, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func TestLoadEmbeddingsInfo(t *testing.T) {
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{MaxClientBatchSize: 16})
	i := m.Info
	if i.Task != TaskFeatureExtraction || i.Dimensions != 32 || i.MaxInputLength != 128 || i.Pooling != "mean" || !i.Normalize {
		t.Errorf("info %+v", i)
	}
	if i.MaxClientBatchSize != 16 || i.MaxBatchTokens == 0 || i.Device != "cpu" {
		t.Errorf("limits %+v", i)
	}
	if m.Embedder == nil || m.Tokenizer == nil {
		t.Fatal("embedding model lacks its pipelines")
	}
}

// TestEmbedMatchesSentenceTransformers is the parity test: tokenization (truncated to
// max_seq_length 128), mean pooling and normalisation against sentence-transformers.
func TestEmbedMatchesSentenceTransformers(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	ctx := context.Background()
	got, stats, err := m.Embedder.Embed(ctx, g.Sentences, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Sentences {
		testutil.AssertClose(t, "normalized "+g.Sentences[i][:min(len(g.Sentences[i]), 20)], got[i], g.MeanNormalized[i], 1e-4)
	}
	wantTokens := 0
	for _, row := range g.AttentionMask {
		for _, v := range row {
			wantTokens += int(v)
		}
	}
	if stats.Tokens != wantTokens || stats.Inputs != len(g.Sentences) {
		t.Errorf("stats %+v, want %d tokens", stats, wantTokens)
	}
	off := false
	raw, _, err := m.Embedder.Embed(ctx, g.Sentences, EmbedOptions{Truncate: true, Normalize: &off})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Sentences {
		testutil.AssertClose(t, "mean pooled", raw[i], g.MeanPooled[i], 1e-4)
	}
}

func TestSimilarityMatchesSentenceTransformers(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	got, _, err := m.Embedder.Similarity(context.Background(), g.Similarity.Source, g.Similarity.Sentences, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.AssertClose(t, "similarity", got, g.Similarity.Scores, 1e-4)
	if _, _, err := m.Embedder.Similarity(context.Background(), "a", nil, EmbedOptions{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty sentences: %v", err)
	}
}

func TestEmbedTokensMatchesHiddenStates(t *testing.T) {
	var g struct {
		Sentences     []string    `json:"sentences"`
		AttentionMask [][]int     `json:"attention_mask"`
		FirstToken    [][]float64 `json:"last_hidden_state_first_token"`
	}
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	got, _, err := m.Embedder.EmbedTokens(context.Background(), g.Sentences, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Sentences {
		n := 0
		for _, v := range g.AttentionMask[i] {
			n += v
		}
		if len(got[i]) != n {
			t.Errorf("sentence %d: %d token vectors, want %d", i, len(got[i]), n)
			continue
		}
		testutil.AssertClose(t, "first token", got[i][0], g.FirstToken[i], 1e-4)
	}
}

// TestBatchedEqualsSingle: texts embedded together (padded into shared batches) equal the
// same texts embedded one at a time.
func TestBatchedEqualsSingle(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	ctx := context.Background()
	all, _, err := m.Embedder.Embed(ctx, g.Sentences, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, s := range g.Sentences {
		wg.Add(1)
		go func(i int, s string) {
			defer wg.Done()
			one, _, err := m.Embedder.Embed(ctx, []string{s}, EmbedOptions{Truncate: true})
			if err != nil {
				t.Error(err)
				return
			}
			testutil.AssertClose(t, "single vs batched", one[0], all[i], 1e-5)
		}(i, s)
	}
	wg.Wait()
}

func TestEmbedOptionsAndValidation(t *testing.T) {
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{MaxClientBatchSize: 3})
	ctx := context.Background()
	var verr *ValidationError
	if _, _, err := m.Embedder.Embed(ctx, nil, EmbedOptions{}); !errors.Is(err, ErrEmpty) || !errors.As(err, &verr) {
		t.Errorf("no inputs: %v", err)
	}
	if _, _, err := m.Embedder.Embed(ctx, []string{"a", "b", "c", "d"}, EmbedOptions{}); !errors.As(err, &verr) {
		t.Errorf("too many inputs: %v", err)
	}
	long := strings.Repeat("word ", 300)
	if _, _, err := m.Embedder.Embed(ctx, []string{long}, EmbedOptions{}); !errors.As(err, &verr) || !strings.Contains(err.Error(), "128") {
		t.Errorf("too long without truncation: %v", err)
	}
	if _, _, err := m.Embedder.Embed(ctx, []string{"ok", "bad \xff"}, EmbedOptions{}); !errors.As(err, &verr) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	right, _, err := m.Embedder.Embed(ctx, []string{long}, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	left, _, err := m.Embedder.Embed(ctx, []string{long + "tail end"}, EmbedOptions{Truncate: true, TruncationDirection: TruncateLeft})
	if err != nil {
		t.Fatal(err)
	}
	if testutil.MaxAbsDiff(right[0], left[0]) == 0 {
		t.Error("left truncation kept the same tokens as right truncation")
	}
	dims, _, err := m.Embedder.Embed(ctx, []string{"hello"}, EmbedOptions{Dimensions: 8})
	if err != nil || len(dims[0]) != 8 {
		t.Fatalf("dimensions 8: %v, %d", err, len(dims[0]))
	}
	var norm float64
	for _, v := range dims[0] {
		norm += float64(v) * float64(v)
	}
	if norm < 0.9999 || norm > 1.0001 {
		t.Errorf("cut embedding not renormalised: |v|² = %v", norm)
	}
	if _, _, err := m.Embedder.Embed(ctx, []string{"hello"}, EmbedOptions{Dimensions: 33}); !errors.As(err, &verr) {
		t.Errorf("dimensions 33: %v", err)
	}
}

func TestEmbedCancelled(t *testing.T) {
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := m.Embedder.Embed(ctx, []string{"x"}, EmbedOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestEmbedOverloaded(t *testing.T) {
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{Sched: sched.Config{MaxConcurrentRequests: 1}})
	emb := m.Embedder.(*Embeddings)
	tk, err := emb.sched.Admit()
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Release()
	if _, _, err := m.Embedder.Embed(context.Background(), []string{"x"}, EmbedOptions{}); !errors.Is(err, sched.ErrOverloaded) {
		t.Errorf("overloaded: %v", err)
	}
}

func TestTokenize(t *testing.T) {
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{})
	ctx := context.Background()
	text := "Café déjà vu"
	got, err := m.Tokenizer.Tokenize(ctx, []string{text}, true)
	if err != nil {
		t.Fatal(err)
	}
	toks := got[0]
	if !toks[0].Special || toks[0].Text != "[CLS]" || toks[0].Start != nil || !toks[len(toks)-1].Special {
		t.Errorf("special tokens: %+v %+v", toks[0], toks[len(toks)-1])
	}
	for _, tk := range toks[1 : len(toks)-1] {
		if tk.Special || tk.Start == nil || text[*tk.Start:*tk.Stop] != tk.Text {
			t.Errorf("token %+v does not carry its byte span", tk)
		}
	}
	plain, err := m.Tokenizer.Tokenize(ctx, []string{text}, false)
	if err != nil || len(plain[0]) != len(toks)-2 {
		t.Errorf("without specials: %d tokens, %v", len(plain[0]), err)
	}
	ids := make([]int32, len(toks))
	for i, tk := range toks {
		ids[i] = tk.ID
	}
	dec, err := m.Tokenizer.Decode(ctx, [][]int32{ids}, true)
	if err != nil || dec[0] != "cafe deja vu" {
		t.Errorf("decode = %q, %v", dec, err)
	}
	if _, err := m.Tokenizer.Decode(ctx, [][]int32{{99999}}, true); err == nil {
		t.Error("out-of-range id decoded")
	}
}

func TestLoadErrors(t *testing.T) {
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	repo, _ := models.OpenDir(testutil.Fixture("tiny-bert-embeddings"))
	if _, err := Load(ctx, repo, LoadOptions{}); err == nil {
		t.Error("load without an opener")
	}
	if _, err := Load(ctx, repo, LoadOptions{Opener: env, Task: "image-classification"}); err == nil {
		t.Error("unsupported task accepted")
	}
	if _, err := Load(ctx, repo, LoadOptions{Opener: env, ONNXFile: "fp16"}); err == nil {
		t.Error("missing ONNX variant accepted")
	}
	var _ runtime.Opener = env
}

// TestPlainTransformersRepo: without modules.json the model serves token-level states
// (Info.Pooling is empty) and pooled calls fall back to the first token, unnormalised.
func TestPlainTransformersRepo(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	repo, err := models.OpenDir(testutil.CopyFixture(t, "tiny-bert-embeddings", testutil.PlainEncoderFiles...))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), repo, LoadOptions{Opener: env})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if m.Info.Task != TaskFeatureExtraction || m.Info.Pooling != "" || m.Info.Normalize || m.Info.MaxInputLength != 512 {
		t.Errorf("info %+v", m.Info)
	}
	cls, _, err := m.Embedder.Embed(context.Background(), g.Sentences[:9], EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cls {
		testutil.AssertClose(t, "first-token fallback", cls[i], g.CLSPooled[i], 1e-4)
	}
}

// TestBatchedEqualsSingleUnderLoad: many concurrent callers with texts of random lengths,
// packed by the scheduler into shared batches on two workers, get exactly what each text
// gets alone, for pooled embeddings and for token-level states.
func TestBatchedEqualsSingleUnderLoad(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{Sessions: 1, Sched: sched.Config{Workers: 2, MaxBatchTokens: 512, MaxBatchSize: 12}})
	// Texts of many lengths: the golden sentences, their prefixes and concatenations.
	var texts []string
	for i, s := range g.Sentences {
		words := strings.Fields(s)
		texts = append(texts, s, strings.Join(words[:1+len(words)/2], " "), s+" "+g.Sentences[(i+1)%len(g.Sentences)])
	}
	texts = append(texts, strings.Repeat("long input words ", 30))
	opts := EmbedOptions{Truncate: true}
	pick := func(idx []int) []string {
		out := make([]string, len(idx))
		for j, i := range idx {
			out[j] = texts[i]
		}
		return out
	}
	testutil.CheckBatchedMatchesSingle(t, len(texts), func(ctx context.Context, idx []int) ([][]float32, error) {
		v, _, err := m.Embedder.Embed(ctx, pick(idx), opts)
		return v, err
	}, 24, 4, 15, 1e-5)
	testutil.CheckBatchedMatchesSingle(t, len(texts), func(ctx context.Context, idx []int) ([][]float32, error) {
		rows, _, err := m.Embedder.EmbedTokens(ctx, pick(idx), opts)
		flat := make([][]float32, len(rows))
		for i, r := range rows {
			for _, tok := range r {
				flat[i] = append(flat[i], tok...)
			}
		}
		return flat, err
	}, 16, 3, 8, 1e-5)
}

// countingOpener counts the sessions a load opens.
type countingOpener struct {
	runtime.Opener
	mu    sync.Mutex
	count int
}

func (c *countingOpener) Open(ctx context.Context, path string, o runtime.Options) (runtime.Session, error) {
	c.mu.Lock()
	c.count++
	c.mu.Unlock()
	return c.Opener.Open(ctx, path, o)
}

// TestSessionPerWorker: runtime.SessionsPerWorker opens a session for each worker (the
// fixture is tiny, so memory does not cap it), and the workers, each on its own session,
// still give every text its sentence-transformers embedding.
func TestSessionPerWorker(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	opener := &countingOpener{Opener: testEnv(t)}
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{Opener: opener, Sessions: runtime.SessionsPerWorker,
		Sched: sched.Config{Workers: 3, MaxBatchSize: 2}})
	if opener.count != 3 {
		t.Fatalf("opened %d sessions for 3 workers, want 3", opener.count)
	}
	var wg sync.WaitGroup
	for i, s := range g.Sentences {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := m.Embedder.Embed(context.Background(), []string{s}, EmbedOptions{Truncate: true})
			if err != nil {
				t.Error(err)
				return
			}
			testutil.AssertClose(t, "normalized", got[0], g.MeanNormalized[i], 1e-4)
		}()
	}
	wg.Wait()
}

// TestSoloSessionMatchesGolden: with a solo session (two threads) a lone request runs there
// and still gets its sentence-transformers embedding.
func TestSoloSessionMatchesGolden(t *testing.T) {
	g := loadEmbeddingsGolden(t)
	opener := &countingOpener{Opener: testEnv(t)}
	obs := &soloCounter{}
	m := loadFixture(t, "tiny-bert-embeddings", LoadOptions{Opener: opener, SoloThreads: 2,
		Sched: sched.Config{Workers: 2, Observer: obs}})
	if opener.count != 2 {
		t.Fatalf("opened %d sessions, want the workers' one and the solo one", opener.count)
	}
	for i, s := range g.Sentences {
		got, _, err := m.Embedder.Embed(context.Background(), []string{s}, EmbedOptions{Truncate: true})
		if err != nil {
			t.Fatal(err)
		}
		testutil.AssertClose(t, "normalized", got[0], g.MeanNormalized[i], 1e-4)
	}
	// Every batch was lone: the load's warm-up and each request. A worker reports its batch
	// after the results are out, so give the last reports a moment.
	want := int64(len(g.Sentences) + 1)
	for deadline := time.Now().Add(2 * time.Second); obs.batches.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if b, n := obs.batches.Load(), obs.solo.Load(); b != want || n != want {
		t.Errorf("%d of %d batches ran solo, want all %d", n, b, want)
	}
}

// soloCounter counts batches that ran on the solo session.
type soloCounter struct {
	sched.Observer
	batches, solo atomic.Int64
}

func (c *soloCounter) Rejected()            {}
func (c *soloCounter) Queued(time.Duration) {}
func (c *soloCounter) Dropped()             {}
func (c *soloCounter) Batch(b sched.BatchStats) {
	c.batches.Add(1)
	if b.Solo {
		c.solo.Add(1)
	}
}
