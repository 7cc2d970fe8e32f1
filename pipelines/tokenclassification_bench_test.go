package pipelines

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/infergo/infergo/bench/benchmodel"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	rt "github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

// BenchmarkTokenClassification measures token-classification throughput through the whole
// pipeline (tokenize, scheduler batching, ONNX Runtime, softmax and aggregation) as a server
// sees it: 32 concurrent callers, one text per call, the serve defaults (one session, one
// worker per CPU, one intra-op thread each). Models: the MiniLM-L6-shaped benchmark graph with
// a 9-label token-classification head (random weights, bert-base-uncased tokenizer; the 90 MB
// of weights are written to bench/testdata/model on first use, as `make bench-model` does) and the tiny-bert-ner fixture.
// The embeddings pipeline on the same MiniLM graph without the head runs beside it as the
// baseline. Corpora: bench/testdata/short.txt and passages.txt. Results: bench/RESULTS.md.
func BenchmarkTokenClassification(b *testing.B) {
	corpora := map[string][]string{"short": readCorpus(b, "short.txt"), "passages": readCorpus(b, "passages.txt")}
	mini, encoder := miniLMTokenClassifier(b)
	m := loadBenchModel(b, mini, "")
	base := loadBenchModel(b, encoder, TaskFeatureExtraction)
	for _, corpus := range []string{"short", "passages"} {
		texts := corpora[corpus]
		for _, s := range []Aggregation{AggregateSimple, AggregateAverage} {
			b.Run(fmt.Sprintf("model=minilm-l6-ner/corpus=%s/strategy=%s", corpus, s), func(b *testing.B) {
				throughput(b, texts, func(ctx context.Context, text string) (Stats, error) {
					_, st, err := m.TokenClassifier.ClassifyTokens(ctx, []string{text}, TokenClassifyOptions{Aggregation: s})
					return st, err
				})
			})
		}
		b.Run(fmt.Sprintf("model=minilm-l6-embeddings/corpus=%s/baseline", corpus), func(b *testing.B) {
			throughput(b, texts, func(ctx context.Context, text string) (Stats, error) {
				_, st, err := base.Embedder.Embed(ctx, []string{text}, EmbedOptions{Truncate: true})
				return st, err
			})
		})
	}
	tiny := loadBenchModel(b, testutil.Fixture("tiny-bert-ner"), "")
	b.Run("model=tiny-bert-ner/corpus=short/strategy=simple", func(b *testing.B) {
		throughput(b, corpora["short"], func(ctx context.Context, text string) (Stats, error) {
			_, st, err := tiny.TokenClassifier.ClassifyTokens(ctx, []string{text}, TokenClassifyOptions{})
			return st, err
		})
	})
}

// throughput runs call over texts (in corpus order, wrapping) from 32 concurrent callers and
// reports texts and tokens per second.
func throughput(b *testing.B, texts []string, call func(ctx context.Context, text string) (Stats, error)) {
	var next, tokens atomic.Int64
	b.SetParallelism(max(32/runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			st, err := call(context.Background(), texts[int(i)%len(texts)])
			if err != nil {
				b.Error(err)
				return
			}
			tokens.Add(int64(st.Tokens))
		}
	})
	sec := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/sec, "seq/s")
	b.ReportMetric(float64(tokens.Load())/sec, "tokens/s")
}

func readCorpus(b *testing.B, name string) []string {
	f, err := os.Open(filepath.Join(testutil.Root(), "bench", "testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return lines
}

// loadBenchModel loads dir for task ("" infers it) with the serve defaults.
func loadBenchModel(b *testing.B, dir, task string) *Model {
	b.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(context.Background(), repo, LoadOptions{Task: task, Opener: env,
		Runtime:  rt.Options{IntraOpThreads: 1, InterOpThreads: 1},
		Sessions: 1, Sched: sched.Config{Workers: runtime.NumCPU()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// miniLMTokenClassifier builds, in a temporary directory, the benchmark MiniLM repo with a
// token-classification head: the graph's last_hidden_state feeds MatMul + Add into a new
// `logits` output [batch, sequence, 9] (the CoNLL labels of tiny-bert-ner). It also returns the
// plain encoder repo.
func miniLMTokenClassifier(b *testing.B) (withHead, encoder string) {
	b.Helper()
	root := testutil.Root()
	src, err := benchmodel.Ensure(root, filepath.Join(root, "bench", "testdata", "model"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		b.Fatal(err)
	}
	// Copies, not links: ONNX Runtime refuses external data that resolves outside the
	// model's directory.
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "onnx/model.onnx.data"} {
		if err := copyFile(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
			b.Fatal(err)
		}
	}
	var cfg map[string]any
	testutil.LoadJSON(b, filepath.Join(src, "config.json"), &cfg)
	var ner map[string]any
	testutil.LoadJSON(b, testutil.Fixture("tiny-bert-ner", "config.json"), &ner)
	cfg["id2label"], cfg["label2id"] = ner["id2label"], ner["label2id"]
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	graph, err := os.ReadFile(filepath.Join(src, "onnx", "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	hidden := int(cfg["hidden_size"].(float64))
	head, err := addTokenClassificationHead(graph, hidden, len(ner["id2label"].(map[string]any)))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "onnx", "model.onnx"), head, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, src
}

// addTokenClassificationHead rewrites an ONNX ModelProto whose graph outputs
// last_hidden_state [batch, seq, hidden]: the graph gets logits = last_hidden_state · W + bias
// (W random normal, std 0.1, so labels vary) as its only output. Protobuf fields are edited
// in place with protowire: ModelProto.graph = 7; GraphProto node = 1, initializer = 5,
// output = 12.
func addTokenClassificationHead(model []byte, hidden, labels int) ([]byte, error) {
	var out []byte
	found := false
	for b := model; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if n < 0 || m < 0 {
			return nil, fmt.Errorf("invalid ONNX model")
		}
		if num != 7 || typ != protowire.BytesType {
			out = append(out, b[:n+m]...)
			b = b[n+m:]
			continue
		}
		graph, _ := protowire.ConsumeBytes(b[n:])
		g, err := headGraph(graph, hidden, labels)
		if err != nil {
			return nil, err
		}
		out = protowire.AppendTag(out, 7, protowire.BytesType)
		out = protowire.AppendBytes(out, g)
		found = true
		b = b[n+m:]
	}
	if !found {
		return nil, fmt.Errorf("ONNX model has no graph")
	}
	return out, nil
}

func headGraph(graph []byte, hidden, labels int) ([]byte, error) {
	var g []byte
	for b := graph; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if n < 0 || m < 0 {
			return nil, fmt.Errorf("invalid ONNX graph")
		}
		if num != 12 { // drop the old outputs
			g = append(g, b[:n+m]...)
		}
		b = b[n+m:]
	}
	str := func(dst []byte, field protowire.Number, s string) []byte {
		dst = protowire.AppendTag(dst, field, protowire.BytesType)
		return protowire.AppendString(dst, s)
	}
	msg := func(dst []byte, field protowire.Number, body []byte) []byte {
		dst = protowire.AppendTag(dst, field, protowire.BytesType)
		return protowire.AppendBytes(dst, body)
	}
	node := func(op string, in []string, outName string) []byte {
		var nb []byte
		for _, s := range in {
			nb = str(nb, 1, s)
		}
		nb = str(nb, 2, outName)
		nb = str(nb, 3, "head_"+op)
		return str(nb, 4, op)
	}
	tensor := func(name string, dims []int, vals []float32) []byte {
		var tb []byte
		for _, d := range dims {
			tb = protowire.AppendTag(tb, 1, protowire.VarintType)
			tb = protowire.AppendVarint(tb, uint64(d))
		}
		tb = protowire.AppendTag(tb, 2, protowire.VarintType)
		tb = protowire.AppendVarint(tb, 1) // FLOAT
		tb = str(tb, 8, name)
		raw := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		tb = protowire.AppendTag(tb, 9, protowire.BytesType)
		return protowire.AppendBytes(tb, raw)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	w := make([]float32, hidden*labels)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.1)
	}
	g = msg(g, 1, node("MatMul", []string{"last_hidden_state", "head.weight"}, "head.matmul"))
	g = msg(g, 1, node("Add", []string{"head.matmul", "head.bias"}, "logits"))
	g = msg(g, 5, tensor("head.weight", []int{hidden, labels}, w))
	g = msg(g, 5, tensor("head.bias", []int{labels}, make([]float32, labels)))
	// ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type FLOAT, shape [batch, sequence, labels]}}}
	var shape []byte
	shape = msg(shape, 1, str(nil, 2, "batch"))
	shape = msg(shape, 1, str(nil, 2, "sequence"))
	shape = msg(shape, 1, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(labels)))
	var tt []byte
	tt = protowire.AppendTag(tt, 1, protowire.VarintType)
	tt = protowire.AppendVarint(tt, 1)
	tt = msg(tt, 2, shape)
	vi := str(nil, 1, "logits")
	vi = msg(vi, 2, msg(nil, 1, tt))
	return msg(g, 12, vi), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
