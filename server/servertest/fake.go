// Package servertest runs the HTTP server in tests: deterministic fake pipelines, a helper
// that starts a real server on a loopback port, and a small net/http client. Tests written
// against Start work unchanged with a real *pipelines.Model (pass a Config whose Load builds
// one), which is how the end-to-end tests plug real models in.
package servertest

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/pipelines"
)

// Hook runs at the start of every fake pipeline call. call is the method name ("Embed",
// "EmbedTokens", "Similarity", "Tokenize", "Decode"); texts are its inputs (the source
// sentence first for Similarity). A non-nil error becomes the call's error. Tests use hooks
// to block, fail or panic.
type Hook func(ctx context.Context, call string, texts []string) error

// Embedder is a deterministic pipelines.Embedder: the embedding of a text is Vector(text,
// Dim), normalised when the options (or Normalize by default) say so; token embeddings are
// the Vector of each whitespace-separated word between "[CLS]" and "[SEP]".
type Embedder struct {
	Dim       int
	Normalize bool // the model's default (sentence-transformers Normalize module)
	Hook      Hook

	calls atomic.Int64
	mu    sync.Mutex
	last  pipelines.EmbedOptions
}

var _ pipelines.Embedder = (*Embedder)(nil)

// Calls returns how many pipeline calls have started.
func (e *Embedder) Calls() int64 { return e.calls.Load() }

// LastOptions returns the options of the latest call.
func (e *Embedder) LastOptions() pipelines.EmbedOptions {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

func (e *Embedder) start(ctx context.Context, call string, texts []string, o pipelines.EmbedOptions) error {
	e.calls.Add(1)
	e.mu.Lock()
	e.last = o
	e.mu.Unlock()
	if e.Hook != nil {
		if err := e.Hook(ctx, call, texts); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Embed implements pipelines.Embedder.
func (e *Embedder) Embed(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	if err := e.start(ctx, "Embed", texts, o); err != nil {
		return nil, pipelines.Stats{}, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = e.pooled(t, o)
	}
	return out, statsFor(texts), nil
}

// EmbedTokens implements pipelines.Embedder.
func (e *Embedder) EmbedTokens(ctx context.Context, texts []string, o pipelines.EmbedOptions) ([][][]float32, pipelines.Stats, error) {
	if err := e.start(ctx, "EmbedTokens", texts, o); err != nil {
		return nil, pipelines.Stats{}, err
	}
	out := make([][][]float32, len(texts))
	for i, t := range texts {
		for _, w := range Words(t) {
			out[i] = append(out[i], Vector(w, e.Dim))
		}
	}
	return out, statsFor(texts), nil
}

// Similarity implements pipelines.Embedder.
func (e *Embedder) Similarity(ctx context.Context, source string, sentences []string, o pipelines.EmbedOptions) ([]float32, pipelines.Stats, error) {
	all := append([]string{source}, sentences...)
	if err := e.start(ctx, "Similarity", all, o); err != nil {
		return nil, pipelines.Stats{}, err
	}
	if len(sentences) == 0 {
		return nil, pipelines.Stats{}, pipelines.EmptyError("sentences", "`inputs.sentences` cannot be empty")
	}
	out := make([]float32, len(sentences))
	for i, s := range sentences {
		out[i] = Cosine(Vector(source, e.Dim), Vector(s, e.Dim))
	}
	return out, statsFor(all), nil
}

func (e *Embedder) pooled(t string, o pipelines.EmbedOptions) []float32 {
	v := Vector(t, e.Dim)
	if o.Dimensions > 0 && o.Dimensions < len(v) {
		v = v[:o.Dimensions]
	}
	normalize := e.Normalize
	if o.Normalize != nil {
		normalize = *o.Normalize
	}
	if normalize {
		v = Normalized(v)
	}
	return v
}

// Vector is the fake embedding of text: dim values in (-1, 1) derived from FNV hashes.
func Vector(text string, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		h := fnv.New64a()
		h.Write([]byte(text))
		h.Write([]byte{byte(i), byte(i >> 8)})
		v[i] = float32(int64(h.Sum64()%2000001)-1000000) / 1000001
	}
	return v
}

// Normalized returns v scaled to unit L2 norm.
func Normalized(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	n = math.Sqrt(n)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// Cosine returns the cosine similarity of a and b.
func Cosine(a, b []float32) float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return float32(dot / math.Sqrt(na*nb))
}

// Words is the fake tokenization of t: "[CLS]", its whitespace-separated words, "[SEP]".
func Words(t string) []string {
	return append(append([]string{"[CLS]"}, strings.Fields(t)...), "[SEP]")
}

func statsFor(texts []string) pipelines.Stats {
	st := pipelines.Stats{Inputs: len(texts), Tokenize: 2 * time.Millisecond, Queue: 3 * time.Millisecond, Inference: 4 * time.Millisecond}
	for _, t := range texts {
		st.Characters += utf8.RuneCountInString(t)
		st.Tokens += len(Words(t))
	}
	return st
}

// Tokenizer is a fake pipelines.TextTokenizer over whitespace-separated words. Special tokens
// are [CLS] (101) and [SEP] (102); a word's id is 1000 + a hash, and Decode writes ids back as
// "w<id>" words so tests can predict both directions.
type Tokenizer struct {
	Hook Hook
}

var _ pipelines.TextTokenizer = (*Tokenizer)(nil)

// WordID is the fake id of word.
func WordID(word string) int32 {
	h := fnv.New32a()
	h.Write([]byte(word))
	return 1000 + int32(h.Sum32()%30000)
}

// Tokenize implements pipelines.TextTokenizer; offsets are byte offsets into the text.
func (t *Tokenizer) Tokenize(ctx context.Context, texts []string, addSpecialTokens bool) ([][]pipelines.Token, error) {
	if t.Hook != nil {
		if err := t.Hook(ctx, "Tokenize", texts); err != nil {
			return nil, err
		}
	}
	out := make([][]pipelines.Token, len(texts))
	for i, text := range texts {
		var toks []pipelines.Token
		if addSpecialTokens {
			toks = append(toks, pipelines.Token{ID: 101, Text: "[CLS]", Special: true})
		}
		pos := 0
		for _, w := range strings.Fields(text) {
			start := pos + strings.Index(text[pos:], w)
			stop := start + len(w)
			pos = stop
			s, e := start, stop
			toks = append(toks, pipelines.Token{ID: WordID(w), Text: w, Start: &s, Stop: &e})
		}
		if addSpecialTokens {
			toks = append(toks, pipelines.Token{ID: 102, Text: "[SEP]", Special: true})
		}
		out[i] = toks
	}
	return out, nil
}

// Decode implements pipelines.TextTokenizer.
func (t *Tokenizer) Decode(ctx context.Context, ids [][]int32, skipSpecialTokens bool) ([]string, error) {
	if t.Hook != nil {
		if err := t.Hook(ctx, "Decode", nil); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(ids))
	for i, seq := range ids {
		var words []string
		for _, id := range seq {
			switch {
			case id == 101 || id == 102:
				if !skipSpecialTokens {
					words = append(words, map[int32]string{101: "[CLS]", 102: "[SEP]"}[id])
				}
			default:
				words = append(words, "w"+strconv.Itoa(int(id)))
			}
		}
		out[i] = strings.Join(words, " ")
	}
	return out, nil
}

// Model is a fake model's parts: the *pipelines.Model to serve, and its fakes and close
// count for assertions.
type Model struct {
	*pipelines.Model
	Embedder  *Embedder
	Tokenizer *Tokenizer
	closed    atomic.Int64
}

// Closed reports how many times the model was closed (a holder must close it exactly once).
func (m *Model) Closed() int64 { return m.closed.Load() }

// NewModel builds a fake sentence-transformers style model: task, mean pooling, dim-sized
// embeddings, normalised by default, MaxClientBatchSize 32.
func NewModel(id, task string, dim int) *Model {
	info := pipelines.Info{
		ModelID: id, Revision: "0123456789abcdef0123456789abcdef01234567", Task: task,
		Dimensions: dim, MaxInputLength: 512, Pooling: "mean", Normalize: true,
		MaxBatchTokens: 8192, MaxBatchSize: 128, MaxConcurrentRequests: 512, Device: "cpu",
	}
	fm := &Model{Embedder: &Embedder{Dim: dim, Normalize: true}, Tokenizer: &Tokenizer{}}
	fm.Model = pipelines.NewModel(info, func(context.Context) error {
		if fm.closed.Add(1) > 1 {
			return errors.New("servertest: model closed twice")
		}
		return nil
	})
	fm.Model.Embedder = fm.Embedder
	fm.Model.Tokenizer = fm.Tokenizer
	return fm
}
