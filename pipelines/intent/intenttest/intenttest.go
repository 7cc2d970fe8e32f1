// Package intenttest provides test doubles for intent classification: a deterministic
// embedder that needs no model files, and a generator of synthetic HumanFirst workspaces whose
// intents that embedder makes learnable.
package intenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/infergo/infergo/pipelines"
)

// HashEmbedder embeds a text as an L2-normalised hashed bag of its lower-cased words plus
// their character trigrams (the hashing trick), so phrases sharing words or word pieces get
// similar vectors. It is safe for concurrent use.
type HashEmbedder struct {
	// Dim is the vector size (default 256).
	Dim int
	// ModelID names the fake model in Info (default "intenttest/hash").
	ModelID string
	// Calls counts Embed calls; Texts counts the texts they carried.
	Calls, Texts atomic.Int64
}

var _ pipelines.Embedder = (*HashEmbedder)(nil)

func (h *HashEmbedder) dim() int {
	if h.Dim <= 0 {
		return 256
	}
	return h.Dim
}

// Info describes the fake model as a served embedding model would be described.
func (h *HashEmbedder) Info() pipelines.Info {
	id := h.ModelID
	if id == "" {
		id = "intenttest/hash"
	}
	return pipelines.Info{ModelID: id, Revision: "test", Task: pipelines.TaskFeatureExtraction, Dimensions: h.dim(),
		MaxInputLength: 512, Pooling: "mean", Normalize: true, MaxClientBatchSize: 64, Device: "cpu"}
}

// Provider returns h as the server's embedder provider expects it.
func (h *HashEmbedder) Provider() func() (pipelines.Embedder, pipelines.Info, error) {
	return func() (pipelines.Embedder, pipelines.Info, error) { return h, h.Info(), nil }
}

// Embed implements pipelines.Embedder. Empty texts are a validation error, as with real models.
func (h *HashEmbedder) Embed(ctx context.Context, texts []string, _ pipelines.EmbedOptions) ([][]float32, pipelines.Stats, error) {
	if err := ctx.Err(); err != nil {
		return nil, pipelines.Stats{}, err
	}
	if len(texts) == 0 {
		return nil, pipelines.Stats{}, pipelines.EmptyError("inputs", "no inputs")
	}
	if len(texts) > 64 {
		return nil, pipelines.Stats{}, pipelines.Invalidf("inputs", "batch size %d > maximum allowed batch size 64", len(texts))
	}
	h.Calls.Add(1)
	h.Texts.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, pipelines.Stats{}, pipelines.EmptyError("inputs", "empty input")
		}
		out[i] = h.vector(t)
	}
	return out, pipelines.Stats{Inputs: len(texts)}, nil
}

func (h *HashEmbedder) vector(text string) []float32 {
	v := make([]float32, h.dim())
	add := func(feature string, w float32) {
		f := fnv.New64a()
		f.Write([]byte(feature))
		x := f.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(len(v))] += sign * w
	}
	for _, word := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		add("w:"+word, 1)
		padded := []rune("#" + word + "#")
		for i := 0; i+3 <= len(padded); i++ {
			add("c:"+string(padded[i:i+3]), 0.3)
		}
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

// EmbedTokens is not supported by the fake.
func (h *HashEmbedder) EmbedTokens(context.Context, []string, pipelines.EmbedOptions) ([][][]float32, pipelines.Stats, error) {
	return nil, pipelines.Stats{}, fmt.Errorf("intenttest: EmbedTokens not supported")
}

// Similarity returns cosine similarities between source and sentences.
func (h *HashEmbedder) Similarity(ctx context.Context, source string, sentences []string, o pipelines.EmbedOptions) ([]float32, pipelines.Stats, error) {
	v, st, err := h.Embed(ctx, append([]string{source}, sentences...), o)
	if err != nil {
		return nil, st, err
	}
	out := make([]float32, len(sentences))
	for i := range sentences {
		var s float32
		for j, x := range v[0] {
			s += x * v[i+1][j]
		}
		out[i] = s
	}
	return out, st, nil
}

// Labeled is a phrase with its intent id.
type Labeled struct {
	Text     string
	IntentID string
}

// Synthetic is a generated intent set.
type Synthetic struct {
	// JSON is the HumanFirst JSON workspace: the intents (grouped under parent intents, five
	// per group), the training phrases and, with testTagged, the held-out phrases tagged Test.
	JSON []byte
	// Holdout are phrases drawn like the training ones but not in them.
	Holdout []Labeled
}

var fillers = strings.Fields(`i you we my the a an to for of on in at with please can could would
like want need help me about is are this that it do does how what when where why some any just
now today there here get make know tell show find again also really maybe thanks hello ok`)

// SyntheticWorkspace generates intents × perIntent training phrases and intents × holdout
// held-out phrases. Each intent owns six made-up keywords and borrows two from the next
// intent; a phrase is two of its eight keywords among three to six common filler words, so
// intents overlap a little and held-out accuracy stays below 1 yet far above chance.
func SyntheticWorkspace(intents, perIntent, holdout int, testTagged bool, seed uint64) *Synthetic {
	rng := rand.New(rand.NewPCG(seed, 7))
	used := map[string]bool{}
	word := func() string {
		syll := []string{"ka", "lo", "mi", "ru", "te", "vo", "zan", "pri", "gul", "dex", "shi", "bor", "nyx", "qua", "fel", "tor"}
		for {
			var b strings.Builder
			for range 2 + rng.IntN(2) {
				b.WriteString(syll[rng.IntN(len(syll))])
			}
			if w := b.String(); !used[w] {
				used[w] = true
				return w
			}
		}
	}
	own := make([][]string, intents)
	for i := range own {
		for range 6 {
			own[i] = append(own[i], word())
		}
	}
	phrase := func(i int) string {
		kw := append(append([]string(nil), own[i]...), own[(i+1)%intents][:2]...)
		rng.Shuffle(len(kw), func(a, b int) { kw[a], kw[b] = kw[b], kw[a] })
		words := append([]string(nil), kw[:2]...)
		for range 3 + rng.IntN(4) {
			words = append(words, fillers[rng.IntN(len(fillers))])
		}
		rng.Shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })
		return strings.Join(words, " ")
	}
	type ref struct {
		IntentID string `json:"intent_id"`
	}
	type tagRef struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type example struct {
		ID      string   `json:"id"`
		Text    string   `json:"text"`
		Intents []ref    `json:"intents"`
		Tags    []tagRef `json:"tags,omitempty"`
	}
	type intent struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Parent string `json:"parent_intent_id,omitempty"`
	}
	ws := struct {
		Name     string    `json:"name"`
		Intents  []intent  `json:"intents"`
		Examples []example `json:"examples"`
		Entities []any     `json:"entities"`
		Tags     []tagRef  `json:"tags"`
	}{Name: "synthetic", Entities: []any{}, Tags: []tagRef{{ID: "tag-test", Name: "Test"}}}
	s := &Synthetic{}
	seen := map[string]bool{}
	unique := func(i int) string {
		for {
			if p := phrase(i); !seen[p] {
				seen[p] = true
				return p
			}
		}
	}
	for g := 0; g*5 < intents; g++ {
		ws.Intents = append(ws.Intents, intent{ID: fmt.Sprintf("intent-GROUP%02d", g), Name: fmt.Sprintf("group_%02d", g)})
	}
	for i := range intents {
		id := fmt.Sprintf("intent-SYN%04d", i)
		ws.Intents = append(ws.Intents, intent{ID: id, Name: fmt.Sprintf("intent_%02d_%s", i, own[i][0]), Parent: fmt.Sprintf("intent-GROUP%02d", i/5)})
		for j := range perIntent {
			ws.Examples = append(ws.Examples, example{ID: fmt.Sprintf("phrase-%d-%d", i, j), Text: unique(i), Intents: []ref{{id}}})
		}
		for j := range holdout {
			l := Labeled{Text: unique(i), IntentID: id}
			s.Holdout = append(s.Holdout, l)
			if testTagged {
				ws.Examples = append(ws.Examples, example{ID: fmt.Sprintf("phrase-%d-t%d", i, j), Text: l.Text, Intents: []ref{{id}},
					Tags: []tagRef{{ID: "tag-test", Name: "Test"}}})
			}
		}
	}
	var err error
	if s.JSON, err = json.Marshal(ws); err != nil {
		panic(err) // plain structs always encode
	}
	return s
}
