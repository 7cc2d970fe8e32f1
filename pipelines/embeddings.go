package pipelines

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/models"
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
	output    int // index of the token-level output in the scheduler's results
	maxBatch  int // texts per call
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
}

// NewEmbeddings checks that the scheduler's model produces token-level hidden states.
func NewEmbeddings(c EmbeddingsConfig) (*Embeddings, error) {
	info := c.Scheduler.Info()
	out := -1
	for _, name := range []string{"last_hidden_state", "token_embeddings"} {
		if i := info.Output(name); i >= 0 {
			out = i
			break
		}
	}
	if out < 0 {
		return nil, fmt.Errorf("pipelines: embeddings: the graph has no last_hidden_state or token_embeddings output (outputs: %v)", outputNames(info))
	}
	shape := info.Outputs[out].Shape
	if len(shape) != 3 || info.Outputs[out].DType != runtime.Float32 {
		return nil, fmt.Errorf("pipelines: embeddings: output %q is %s%v, want float32 [batch, seq, hidden]", info.Outputs[out].Name, info.Outputs[out].DType, shape)
	}
	if c.MaxLength <= 0 {
		return nil, fmt.Errorf("pipelines: embeddings: max length %d", c.MaxLength)
	}
	e := &Embeddings{tok: c.Tokenizer, sched: c.Scheduler, maxLen: c.MaxLength, hidden: int(shape[2]), output: out, maxBatch: c.MaxClientBatchSize}
	if c.ST != nil {
		e.pooling, e.normalize = c.ST.Pooling, c.ST.Normalize
	}
	return e, nil
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
	vecs, stats, err := e.run(ctx, texts, o, checkDims, func(_ int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
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
	// The worker copies each text's rows out of the batch buffer, which it then reuses.
	rows, stats, err := e.run(ctx, texts, o, nil, func(_ int, outs []runtime.Tensor) ([]runtime.Tensor, error) {
		t := outs[e.output]
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

// run validates and tokenizes texts, calls check (if any) and runs them through the
// scheduler with reduce applied on its worker to each text's token rows ([tokens × hidden],
// no padding), returning the first tensor reduce made for each text.
func (e *Embeddings) run(ctx context.Context, texts []string, o EmbedOptions, check func() error, reduce sched.Reducer) ([][]float32, Stats, error) {
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
	ticket, err := e.sched.Admit()
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
