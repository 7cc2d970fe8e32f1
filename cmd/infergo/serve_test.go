package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/server/servertest"
)

// binary is the infergo binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "infergo-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "infergo")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build infergo:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type process struct {
	cmd *exec.Cmd
	url string
	out *bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// launchServe starts `infergo serve` on a free port with args and env, without waiting.
func launchServe(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary, append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port)}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), out: out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// waitFor polls path until it answers with status (20 s at most).
func (p *process) waitFor(t *testing.T, path string, status int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d in 20s; output:\n%s", path, status, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServe runs `infergo serve` with args and env and waits for /health to answer 200.
func startServe(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := launchServe(t, env, args...)
	p.waitFor(t, "/health", 200)
	return p
}

// stop sends SIGTERM and requires a clean exit (code 0), as the container contract does.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; output:\n%s", err, p.out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM; output:\n%s", p.out)
	}
}

func postJSON(t *testing.T, url string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e bytes.Buffer
		e.ReadFrom(resp.Body)
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, e.String())
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

type golden struct {
	Sentences      []string    `json:"sentences"`
	MeanNormalized [][]float64 `json:"mean_pooled_normalized"`
	Similarity     struct {
		Source    string    `json:"source_sentence"`
		Sentences []string  `json:"sentences"`
		Scores    []float64 `json:"scores"`
	} `json:"sentence_similarity"`
}

// TestServeBuiltInModel is `make run`: no model given, the built-in model is served, the
// api-inference-community acceptance checks pass, every embedding route matches
// sentence-transformers, and SIGTERM exits 0.
func TestServeBuiltInModel(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	p := startServe(t, []string{"TASK=", "MODEL_ID="})
	servertest.Acceptance(t, p.url, "feature-extraction", 32)

	var tei [][]float64
	postJSON(t, p.url+"/embed", map[string]any{"inputs": g.Sentences}, &tei)
	var aic [][]float64
	postJSON(t, p.url+"/", map[string]any{"inputs": g.Sentences}, &aic)
	var oai struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
			Index     int       `json:"index"`
		} `json:"data"`
	}
	postJSON(t, p.url+"/v1/embeddings", map[string]any{"input": g.Sentences}, &oai)
	for i := range g.Sentences {
		testutil.AssertClose(t, "TEI /embed", tei[i], g.MeanNormalized[i], 1e-4)
		testutil.AssertClose(t, "aic POST /", aic[i], g.MeanNormalized[i], 1e-4)
		testutil.AssertClose(t, "OpenAI /v1/embeddings", oai.Data[i].Embedding, g.MeanNormalized[i], 1e-4)
	}
	var sim []float64
	postJSON(t, p.url+"/similarity", map[string]any{"inputs": map[string]any{"source_sentence": g.Similarity.Source, "sentences": g.Similarity.Sentences}}, &sim)
	testutil.AssertClose(t, "TEI /similarity", sim, g.Similarity.Scores, 1e-4)

	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	m.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"infergo_http_requests_total", "infergo_sched_queue_duration_seconds", "infergo_sched_batch_size", "infergo_sched_batch_tokens", "infergo_sched_batch_padding_ratio", "infergo_sched_rejected_total", "infergo_request_tokenization_duration_seconds"} {
		if !strings.Contains(m.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	p.stop(t)
}

// TestServeSimilarityFixture serves a local repo with TASK=sentence-similarity.
func TestServeSimilarityFixture(t *testing.T) {
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	p := startServe(t, []string{"TASK=sentence-similarity"}, "--model", testutil.Fixture("tiny-bert-embeddings"), "--workers", "2")
	servertest.Acceptance(t, p.url, "sentence-similarity", 32)
	var scores []float64
	postJSON(t, p.url+"/", map[string]any{"inputs": map[string]any{"source_sentence": g.Similarity.Source, "sentences": g.Similarity.Sentences}}, &scores)
	testutil.AssertClose(t, "aic sentence-similarity", scores, g.Similarity.Scores, 1e-4)
	p.stop(t)
}

// TestServeMissingModel: like the Python containers, a model that cannot be loaded leaves
// the server up: GET / answers {"ok":"ok"}, /health 503, and every POST 500 with the load
// error; SIGTERM still exits 0.
func TestServeMissingModel(t *testing.T) {
	p := launchServe(t, nil, "--model", filepath.Join(t.TempDir(), "nope"))
	p.waitFor(t, "/", 200)
	r := servertest.Get(t, p.url+"/")
	if r.Status != 200 || string(r.Body) != `{"ok":"ok"}` {
		t.Errorf("GET /: %d %s", r.Status, r.Body)
	}
	if r := servertest.Get(t, p.url+"/health"); r.Status != 503 {
		t.Errorf("/health: %d", r.Status)
	}
	post := servertest.Post(t, p.url+"/", `{"inputs":"x"}`)
	if post.Status != 500 || !strings.Contains(string(post.Body), "no such directory") || post.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST: %d %q %s", post.Status, post.Header.Get("Content-Type"), post.Body)
	}
	p.stop(t)
}

// TestServePlainTransformersRepo: a repo without sentence-transformers files answers aic
// feature-extraction with token-level hidden states, shaped as transformers' pipeline
// returns them ([1][tokens][hidden] for one string).
func TestServePlainTransformersRepo(t *testing.T) {
	var g struct {
		Sentences  []string    `json:"sentences"`
		Mask       [][]int     `json:"attention_mask"`
		FirstToken [][]float64 `json:"last_hidden_state_first_token"`
	}
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	dir := testutil.CopyFixture(t, "tiny-bert-embeddings", testutil.PlainEncoderFiles...)
	p := startServe(t, []string{"TASK="}, "--model", dir)
	var states [][][]float64
	postJSON(t, p.url+"/", map[string]any{"inputs": g.Sentences[0]}, &states)
	tokens := 0
	for _, v := range g.Mask[0] {
		tokens += v
	}
	if len(states) != 1 || len(states[0]) != tokens || len(states[0][0]) != 32 {
		t.Fatalf("shape [%d][%d][…]", len(states), len(states[0]))
	}
	testutil.AssertClose(t, "first token", states[0][0], g.FirstToken[0], 1e-4)
	p.stop(t)
}
