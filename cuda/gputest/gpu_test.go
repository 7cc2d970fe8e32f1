package gputest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infergo/infergo/cuda"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/server"
	"github.com/infergo/infergo/server/servertest"
)

type golden struct {
	Sentences      []string    `json:"sentences"`
	MeanNormalized [][]float64 `json:"mean_pooled_normalized"`
	Similarity     struct {
		Source    string    `json:"source_sentence"`
		Sentences []string  `json:"sentences"`
		Scores    []float64 `json:"scores"`
	} `json:"sentence_similarity"`
}

// setup opens ONNX Runtime and the CUDA provider for cuda:0 with opts, or skips.
func setup(t *testing.T, options string) (*ort.Environment, *cuda.Provider) {
	t.Helper()
	if os.Getenv("INFERGO_GPU_TESTS") != "1" {
		t.Skip("GPU suite: set INFERGO_GPU_TESTS=1 on a machine with an NVIDIA GPU")
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	o, err := cuda.ParseOptions(options)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cuda.NewProvider(env, cuda.Device{Kind: cuda.CUDA}, o, cuda.Finder{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return env, p
}

// fixtureDir copies the fixture repo, since graph rewrites are written beside the graph.
func fixtureDir(t *testing.T, fixture string) string {
	t.Helper()
	src, dst := testutil.Fixture(fixture), t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func load(t *testing.T, env *ort.Environment, p *cuda.Provider, g pipelines.GraphOptions) *pipelines.Model {
	t.Helper()
	repo, err := models.OpenDir(fixtureDir(t, "tiny-bert-embeddings"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{
		Opener: env, Runtime: runtime.Options{IntraOpThreads: 1, Provider: p}, Device: p.Name(), Graph: g,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestGPUDevices: the registered provider shows up as a GPU device.
func TestGPUDevices(t *testing.T) {
	env, p := setup(t, "")
	devs, err := cuda.Devices(env)
	if err != nil {
		t.Fatal(err)
	}
	gpu := 0
	for _, d := range devs {
		t.Logf("%s (%s) %s vendor %q %#x device %#x metadata %v ep_metadata %v ep_options %v", d.EP, d.EPVendor, d.Type, d.Vendor, d.VendorID, d.DeviceID, d.Metadata, d.EPMetadata, d.EPOptions)
		if d.EP == cuda.EPName && d.Type == cuda.HardwareGPU {
			gpu++
		}
	}
	if gpu == 0 {
		t.Error("no CUDAExecutionProvider GPU device")
	}
	t.Logf("provider %s, options %v, libraries %+v", p.Name(), p.Options(), p.Libraries())
}

// TestGPUEmbeddingsParity: the goldens on CUDA. Exact fp32 (TF32 off) must stay within the
// CPU tolerance, 1e-4. TF32 (10-bit mantissa in the products, fp32 accumulation) and fp16
// (11-bit) are both about float16-precise: 5e-3, as for fp16 on the CPU (see onnxgraph).
func TestGPUEmbeddingsParity(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	for _, c := range []struct {
		name, options string
		graph         pipelines.GraphOptions
		tol           float64
	}{
		{"fp32 as exported", "use_tf32=0", pipelines.GraphOptions{}, 1e-4},
		{"fp32 pooled in graph, buckets", "use_tf32=0", pipelines.GraphOptions{PoolInGraph: true, SeqBucket: 16}, 1e-4},
		{"tf32 pooled in graph, buckets (serve default)", "", pipelines.GraphOptions{PoolInGraph: true, SeqBucket: 16}, 5e-3},
		{"fp16 pooled in graph, buckets", "", pipelines.GraphOptions{PoolInGraph: true, SeqBucket: 16, Float16: true}, 5e-3},
		{"fp32 fused attention, pooled, buckets", "use_tf32=0", pipelines.GraphOptions{FuseAttention: true, PoolInGraph: true, SeqBucket: 16}, 1e-4},
		{"fp16 fused attention, pooled, buckets", "", pipelines.GraphOptions{FuseAttention: true, PoolInGraph: true, SeqBucket: 16, Float16: true}, 5e-3},
		{"fp32 fused attention with key lengths", "use_tf32=0", pipelines.GraphOptions{FuseAttention: true, AttentionMask: onnxgraph.MaskKeyLengths, PoolInGraph: true, SeqBucket: 16}, 1e-4},
		{"fp16 fused attention with key lengths", "", pipelines.GraphOptions{FuseAttention: true, AttentionMask: onnxgraph.MaskKeyLengths, PoolInGraph: true, SeqBucket: 16, Float16: true}, 5e-3},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, p := setup(t, c.options)
			m := load(t, env, p, c.graph)
			got, _, err := m.Embedder.Embed(context.Background(), g.Sentences, pipelines.EmbedOptions{Truncate: true})
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := range got {
				worst = max(worst, testutil.MaxAbsDiff(got[i], g.MeanNormalized[i]))
				testutil.AssertClose(t, g.Sentences[i][:min(20, len(g.Sentences[i]))], got[i], g.MeanNormalized[i], c.tol)
			}
			sim, _, err := m.Embedder.Similarity(context.Background(), g.Similarity.Source, g.Similarity.Sentences, pipelines.EmbedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			testutil.AssertClose(t, "similarity", sim, g.Similarity.Scores, c.tol)
			tokens, _, err := m.Embedder.EmbedTokens(context.Background(), g.Sentences[:2], pipelines.EmbedOptions{Truncate: true})
			if err != nil || len(tokens) != 2 || len(tokens[0][0]) != 32 {
				t.Errorf("token level: %v", err)
			}
			t.Logf("max abs diff to sentence-transformers: %.2e (tolerance %.0e)", worst, c.tol)
		})
	}
}

// TestGPUServerAcceptance runs the server's acceptance suite and the route goldens against an
// in-process server whose model runs on CUDA with serve's defaults.
func TestGPUServerAcceptance(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	env, p := setup(t, "use_tf32=0")
	srv, err := server.New(server.Config{
		ComputeType: "gpu", Version: "gpu-test",
		Load: func(ctx context.Context) (*pipelines.Model, error) {
			repo, err := models.OpenDir(fixtureDir(t, "tiny-bert-embeddings"))
			if err != nil {
				return nil, err
			}
			return pipelines.Load(ctx, repo, pipelines.LoadOptions{
				Opener: env, Runtime: runtime.Options{IntraOpThreads: 1, Provider: p}, Device: p.Name(),
				Graph: pipelines.GraphOptions{PoolInGraph: true, FuseAttention: true, SeqBucket: 16},
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := http.Get(url + "/health")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	servertest.Acceptance(t, url, "feature-extraction", 32)
	var tei [][]float64
	post(t, url+"/embed", map[string]any{"inputs": g.Sentences}, &tei)
	for i := range g.Sentences {
		testutil.AssertClose(t, "TEI /embed on CUDA", tei[i], g.MeanNormalized[i], 1e-4)
	}
	var info map[string]any
	r, err := http.Get(url + "/info")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&info)
	r.Body.Close()
	if fmt.Sprint(info["device"]) != "cuda:0" {
		t.Errorf("/info device %v", info["device"])
	}
}

func post(t *testing.T, url string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	r, err := http.Post(url, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("POST %s: %d", url, r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
