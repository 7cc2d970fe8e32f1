package pipelines

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// Embeddings serves feature-extraction and sentence-similarity for encoder models: mean, CLS,
// max or last-token pooling and optional L2 normalisation as sentence-transformers configures
// them, or token-level hidden states for plain transformers repos.
type Embeddings struct {
	tok       *tokenize.Tokenizer
	sched     *sched.Scheduler
	pooling   models.Pooling // "" for token-level models
	normalize bool
	maxLen    int // tokens, special tokens included
	hidden    int
	output    int  // index of the token-level (or, when pooled, the pooled) output
	pooled    bool // the graph pools (onnxgraph.PooledOutput): results are [hidden] vectors
	maxBatch  int  // texts per call

	// tokenLevel gives the scheduler for token-level requests when the main one is pooled.
	tokenLevel func(ctx context.Context) (*sched.Scheduler, int, error)
}

var _ Embedder = (*Embeddings)(nil)

// EmbeddingsConfig configures NewEmbeddings.
type EmbeddingsConfig struct {
	Tokenizer *tokenize.Tokenizer
	Scheduler *sched.Scheduler
	// ST describes the sentence-transformers modules; nil serves token-level states.
	ST *models.SentenceTransformers
	// MaxLength is the longest input in tokens, special tokens included.
	MaxLength int
	// MaxClientBatchSize bounds the texts of one call (0: unbounded).
	MaxClientBatchSize int
	// TokenLevel, needed when the scheduler's graph pools in the graph (its only output is
	// onnxgraph.PooledOutput), returns a scheduler with a token-level output and that output's
	// index, for EmbedTokens. It is called on the first such request.
	TokenLevel func(ctx context.Context) (*sched.Scheduler, int, error)
}

// NewEmbeddings checks that the scheduler's model produces token-level hidden states, or the
// pooled vectors onnxgraph.AppendPooling adds (then ST must be set: the graph pooled as it says).
func NewEmbeddings(c EmbeddingsConfig) (*Embeddings, error) {
	info := c.Scheduler.Info()
	if c.MaxLength <= 0 {
		return nil, fmt.Errorf("pipelines: embeddings: max length %d", c.MaxLength)
	}
	e := &Embeddings{tok: c.Tokenizer, sched: c.Scheduler, maxLen: c.MaxLength, maxBatch: c.MaxClientBatchSize, tokenLevel: c.TokenLevel}
	if c.ST != nil {
		e.pooling, e.normalize = c.ST.Pooling, c.ST.Normalize
	}
	if i := info.Output(onnxgraph.PooledOutput); i >= 0 {
		shape := info.Outputs[i].Shape
		if len(shape) != 2 || info.Outputs[i].DType != runtime.Float32 || shape[1] <= 0 {
			return nil, fmt.Errorf("pipelines: embeddings: output %q is %s%v, want float32 [batch, hidden]", onnxgraph.PooledOutput, info.Outputs[i].DType, shape)
		}
		if c.ST == nil {
			return nil, fmt.Errorf("pipelines: embeddings: a pooled graph needs the sentence-transformers pooling config")
		}
		e.output, e.pooled, e.hidden = i, true, int(shape[1])
		return e, nil
	}
	out := tokenOutput(info)
	if out < 0 {
		return nil, fmt.Errorf("pipelines: embeddings: the graph has no last_hidden_state or token_embeddings output (outputs: %v)", outputNames(info))
	}
	shape := info.Outputs[out].Shape
	if len(shape) != 3 || info.Outputs[out].DType != runtime.Float32 {
		return nil, fmt.Errorf("pipelines: embeddings: output %q is %s%v, want float32 [batch, seq, hidden]", info.Outputs[out].Name, info.Outputs[out].DType, shape)
	}
	e.output, e.hidden = out, int(shape[2])
	return e, nil
}

// tokenOutput returns the index of the token-level output, or -1.
func tokenOutput(info runtime.ModelInfo) int {
	for _, name := range []string{"last_hidden_state", "token_embeddings"} {
		if i := info.Output(name); i >= 0 {
			return i
		}
	}
	return -1
}

// Hidden returns the size of the model's hidden states (the embedding size).
func (e *Embeddings) Hidden() int { return e.hidden }

// Pooling returns the pooling mode, "" for token-level models.
func (e *Embeddings) Pooling() models.Pooling { return e.pooling }

// Normalizes reports whether embeddings are normalised by default.
func (e *Embeddings) Normalizes() bool { return e.normalize }

// MaxLength returns the longest input in tokens.
func (e *Embeddings) MaxLength() int { return e.maxLen }

// Embed implements Embedder.
func (e *Embeddings) Embed(ctx context.Context, texts []string, o EmbedOptions) ([][]float32, Stats, error) {
	mode := e.pooling
	if mode == "" {
		// A plain transformers encoder has no pooling config: use the first token, as TEI
		// does for BERT-like models without one.
		mode = models.PoolCLS
	}
	checkDims := func() error {
		if o.Dimensions < 0 || o.Dimensions > e.hidden {
			return Invalidf("dimensions", "`dimensions` must be between 1 and %d, got %d", e.hidden, o.Dimensions)
		}
		return nil
	}
	// Pooling runs on the scheduler's worker, so only [hidden] per text leaves the batch and
	// the batch's [n, seq, hidden] buffer is reused for the next one.
	vecs, stats, err := e.run(ctx, e.sched, texts, o, checkDims, func(_ int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
		if e.pooled {
			// Already pooled in the graph; copy, as the batch's buffer is reused.
			v := append([]float32(nil), outs[e.output].Float32s()...)
			return []runtime.Tensor{runtime.NewTensor([]int64{int64(len(v))}, v)}, nil
		}
		v, err := pool(mode, outs[e.output].Float32s(), e.hidden)
		if err != nil {
			return nil, err
		}
		return []runtime.Tensor{runtime.NewTensor([]int64{int64(len(v))}, v)}, nil
	})
	if err != nil {
		return nil, stats, err
	}
	norm := e.normalize
	if o.Normalize != nil {
		norm = *o.Normalize
	}
	for i, v := range vecs {
		if o.Dimensions > 0 {
			v = v[:o.Dimensions]
		}
		if norm {
			normalize(v)
		}
		vecs[i] = v
	}
	return vecs, stats, nil
}

// EmbedTokens implements Embedder: token-level hidden states, special tokens included.
func (e *Embeddings) EmbedTokens(ctx context.Context, texts []string, o EmbedOptions) ([][][]float32, Stats, error) {
	s, output := e.sched, e.output
	if e.pooled {
		if e.tokenLevel == nil {
			return nil, Stats{}, fmt.Errorf("pipelines: token-level embeddings are not available for this pooled graph")
		}
		var err error
		if s, output, err = e.tokenLevel(ctx); err != nil {
			return nil, Stats{}, err
		}
	}
	// The worker copies each text's rows out of the batch buffer, which it then reuses.
	rows, stats, err := e.run(ctx, s, texts, o, nil, func(_ int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
		t := outs[output]
		return []runtime.Tensor{runtime.NewTensor(append([]int64(nil), t.Shape...), append([]float32(nil), t.Float32s()...))}, nil
	})
	if err != nil {
		return nil, stats, err
	}
	out := make([][][]float32, len(rows))
	for i, r := range rows {
		n := len(r) / e.hidden
		out[i] = make([][]float32, n)
		for t := 0; t < n; t++ {
			out[i][t] = r[t*e.hidden : (t+1)*e.hidden : (t+1)*e.hidden]
		}
	}
	return out, stats, nil
}

// Similarity implements Embedder: cosine similarity of pooled embeddings, as
// sentence-transformers' util.cos_sim of encode() outputs.
func (e *Embeddings) Similarity(ctx context.Context, source string, sentences []string, o EmbedOptions) ([]float32, Stats, error) {
	if len(sentences) == 0 {
		return nil, Stats{}, EmptyError("sentences", "`inputs.sentences` cannot be empty")
	}
	texts := append([]string{source}, sentences...)
	vecs, stats, err := e.Embed(ctx, texts, o)
	if err != nil {
		return nil, stats, err
	}
	scores := make([]float32, len(sentences))
	for i := range sentences {
		scores[i] = cosine(vecs[0], vecs[i+1])
	}
	return scores, stats, nil
}

// run validates and tokenizes texts, calls check (if any) and runs them through scheduler s
// with reduce applied on its worker to each text's share of the outputs (token rows
// [tokens × hidden] without padding, or a pooled [hidden] vector), returning the first tensor
// reduce made for each text.
func (e *Embeddings) run(ctx context.Context, s *sched.Scheduler, texts []string, o EmbedOptions, check func() error, reduce sched.Reducer) ([][]float32, Stats, error) {
	stats := Stats{Inputs: len(texts)}
	if len(texts) == 0 {
		return nil, stats, EmptyError("inputs", "`inputs` cannot be empty")
	}
	if e.maxBatch > 0 && len(texts) > e.maxBatch {
		return nil, stats, Invalidf("inputs", "batch size %d > maximum allowed batch size %d", len(texts), e.maxBatch)
	}
	for i, t := range texts {
		if !utf8.ValidString(t) {
			return nil, stats, Invalidf("inputs", "input %d is not valid UTF-8", i)
		}
		stats.Characters += utf8.RuneCountInString(t)
	}
	// Admission before any work: an overloaded scheduler answers at once.
	ticket, err := s.Admit()
	if err != nil {
		return nil, stats, err
	}
	defer ticket.Release()

	start := time.Now()
	seqs, tokens, err := e.tokenize(texts, o)
	stats.Tokenize = time.Since(start)
	stats.Tokens = tokens
	if err != nil {
		return nil, stats, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, stats, err
		}
	}
	res, err := ticket.RunReduce(ctx, seqs, reduce)
	if err != nil {
		return nil, stats, err
	}
	rows := make([][]float32, len(res))
	for i, r := range res {
		rows[i] = r.Outputs[0].Float32s()
		stats.Queue = max(stats.Queue, r.Queue)
		stats.Inference = max(stats.Inference, r.Inference)
	}
	return rows, stats, nil
}

// maxCharsPerToken bounds how many characters a token may stand for when inputs are checked
// before tokenizing; like TEI, longer inputs are rejected without spending tokenizer time.
const maxCharsPerToken = 250

func (e *Embeddings) tokenize(texts []string, o EmbedOptions) ([]sched.Sequence, int, error) {
	inputs := make([]tokenize.Input, len(texts))
	for i, t := range texts {
		if !o.Truncate && utf8.RuneCountInString(t) > e.maxLen*maxCharsPerToken {
			return nil, 0, Invalidf("inputs", "`inputs` must have less than %d tokens. Given: more than %d characters", e.maxLen, e.maxLen*maxCharsPerToken)
		}
		inputs[i] = tokenize.Input{Text: t}
	}
	opts := tokenize.Options{AddSpecialTokens: true}
	if o.Truncate {
		dir := tokenize.Right
		if o.TruncationDirection == TruncateLeft {
			dir = tokenize.Left
		}
		opts.Truncation = &tokenize.Truncation{MaxLength: e.maxLen, Direction: dir}
	}
	encs, err := e.tok.EncodeBatch(inputs, opts)
	if err != nil {
		return nil, 0, Invalidf("inputs", "tokenization failed: %v", err)
	}
	seqs := make([]sched.Sequence, len(encs))
	total := 0
	for i, enc := range encs {
		if enc.Len() > e.maxLen {
			return nil, 0, Invalidf("inputs", "`inputs` must have less than %d tokens. Given: %d", e.maxLen, enc.Len())
		}
		seqs[i] = sched.Sequence{IDs: enc.IDs, TypeIDs: enc.TypeIDs}
		total += enc.Len()
	}
	return seqs, total, nil
}

func outputNames(info runtime.ModelInfo) []string {
	names := make([]string, len(info.Outputs))
	for i, o := range info.Outputs {
		names[i] = o.Name
	}
	return names
}
