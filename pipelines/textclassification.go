package pipelines

import (
	"context"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// Problem types of config.json that change text classification's default function.
const (
	ProblemSingleLabel = "single_label_classification"
	ProblemMultiLabel  = "multi_label_classification"
	ProblemRegression  = "regression"
)

// TextClassification serves text-classification (sequence classification) for encoder models
// with a sequence-level `logits` output, as transformers' TextClassificationPipeline: softmax,
// sigmoid or raw logits (function_to_apply, defaulting from problem_type and the label count),
// labels sorted by descending score, top_k. Pairs are encoded with the tokenizer's pair
// template.
type TextClassification struct {
	tok      *tokenize.Tokenizer
	sched    *sched.Scheduler
	labels   []string
	output   int
	maxLen   int
	maxBatch int
	function ClassificationFunction // the model's default
}

var _ TextClassifier = (*TextClassification)(nil)

// TextClassificationConfig configures NewTextClassification.
type TextClassificationConfig struct {
	Tokenizer *tokenize.Tokenizer
	Scheduler *sched.Scheduler
	// Labels are config.json's id2label in id order; nil names them LABEL_0….
	Labels []string
	// ProblemType is config.json's problem_type ("" when absent).
	ProblemType string
	// MaxLength is the longest input in tokens, special tokens included.
	MaxLength int
	// MaxClientBatchSize bounds the inputs of one call (0: unbounded).
	MaxClientBatchSize int
}

// NewTextClassification checks that the scheduler's model produces one logit per label.
func NewTextClassification(c TextClassificationConfig) (*TextClassification, error) {
	out, labels, err := logitsOutput(c.Scheduler.Info(), 2, c.Labels)
	if err != nil {
		return nil, fmt.Errorf("pipelines: text classification: %w", err)
	}
	if c.MaxLength <= 0 {
		return nil, fmt.Errorf("pipelines: text classification: max length %d", c.MaxLength)
	}
	return &TextClassification{
		tok: c.Tokenizer, sched: c.Scheduler, labels: labels, output: out, maxLen: c.MaxLength,
		maxBatch: c.MaxClientBatchSize, function: defaultFunction(c.ProblemType, len(labels)),
	}, nil
}

// defaultFunction is transformers' choice when function_to_apply is not given.
func defaultFunction(problem string, labels int) ClassificationFunction {
	switch {
	case problem == ProblemRegression:
		return FunctionNone
	case problem == ProblemMultiLabel || labels == 1:
		return FunctionSigmoid
	default:
		return FunctionSoftmax
	}
}

// Labels returns the labels in id order.
func (c *TextClassification) Labels() []string { return c.labels }

// MaxLength returns the longest input in tokens.
func (c *TextClassification) MaxLength() int { return c.maxLen }

// DefaultFunction returns the function applied when a call does not choose one.
func (c *TextClassification) DefaultFunction() ClassificationFunction { return c.function }

// Classify implements TextClassifier.
func (c *TextClassification) Classify(ctx context.Context, inputs []TextInput, o TextClassifyOptions) ([][]LabelScore, Stats, error) {
	stats := Stats{Inputs: len(inputs)}
	fn := o.Function
	switch fn {
	case FunctionDefault:
		fn = c.function
	case FunctionSoftmax, FunctionSigmoid, FunctionNone:
	default:
		return nil, stats, Invalidf("function_to_apply", "`function_to_apply` must be one of softmax, sigmoid, none; got %q", string(fn))
	}
	if o.TopK < 0 {
		return nil, stats, Invalidf("top_k", "`top_k` must be a positive integer, got %d", o.TopK)
	}
	texts := make([]string, 0, len(inputs))
	for _, in := range inputs {
		texts = append(texts, in.Text)
		if in.HasPair {
			texts = append(texts, in.Pair)
		}
	}
	if len(inputs) == 0 {
		return nil, stats, EmptyError("inputs", "`inputs` cannot be empty")
	}
	if c.maxBatch > 0 && len(inputs) > c.maxBatch {
		return nil, stats, Invalidf("inputs", "batch size %d > maximum allowed batch size %d", len(inputs), c.maxBatch)
	}
	if err := checkTexts(texts, 0, &stats); err != nil {
		return nil, stats, err
	}
	ticket, err := c.sched.Admit()
	if err != nil {
		return nil, stats, err
	}
	defer ticket.Release()

	start := time.Now()
	seqs, err := c.tokenize(inputs, o, &stats)
	stats.Tokenize = time.Since(start)
	if err != nil {
		return nil, stats, err
	}
	res, err := ticket.Run(ctx, seqs)
	if err != nil {
		return nil, stats, err
	}
	out := make([][]LabelScore, len(res))
	for i, r := range res {
		stats.Queue = max(stats.Queue, r.Queue)
		stats.Inference = max(stats.Inference, r.Inference)
		logits := r.Outputs[c.output].Float32s()
		if len(logits) != len(c.labels) {
			return nil, stats, fmt.Errorf("pipelines: text classification: %d logits for %d labels", len(logits), len(c.labels))
		}
		out[i] = c.scores(logits, fn, o.TopK)
	}
	return out, stats, nil
}

func (c *TextClassification) tokenize(inputs []TextInput, o TextClassifyOptions, stats *Stats) ([]sched.Sequence, error) {
	batch := make([]tokenize.Input, len(inputs))
	for i, in := range inputs {
		n := utf8.RuneCountInString(in.Text) + utf8.RuneCountInString(in.Pair)
		if !o.Truncate && n > c.maxLen*maxCharsPerToken {
			return nil, Invalidf("inputs", "`inputs` must have less than %d tokens. Given: more than %d characters", c.maxLen, c.maxLen*maxCharsPerToken)
		}
		batch[i] = tokenize.Input{Text: in.Text, Pair: in.Pair, HasPair: in.HasPair}
	}
	opts := tokenize.Options{AddSpecialTokens: true}
	if o.Truncate {
		dir := tokenize.Right
		if o.TruncationDirection == TruncateLeft {
			dir = tokenize.Left
		}
		opts.Truncation = &tokenize.Truncation{MaxLength: c.maxLen, Direction: dir}
	}
	encs, err := c.tok.EncodeBatch(batch, opts)
	if err != nil {
		return nil, Invalidf("inputs", "tokenization failed: %v", err)
	}
	seqs := make([]sched.Sequence, len(encs))
	for i, enc := range encs {
		if enc.Len() > c.maxLen {
			return nil, Invalidf("inputs", "`inputs` must have less than %d tokens. Given: %d", c.maxLen, enc.Len())
		}
		seqs[i] = sched.Sequence{IDs: enc.IDs, TypeIDs: enc.TypeIDs}
		stats.Tokens += enc.Len()
	}
	return seqs, nil
}

// scores applies fn, sorts by descending score (stably: ties keep label order, as Python's
// sort(reverse=True) does) and keeps the top k (0: all).
func (c *TextClassification) scores(logits []float32, fn ClassificationFunction, k int) []LabelScore {
	probs := make([]float32, len(logits))
	switch fn {
	case FunctionSoftmax:
		softmax32(logits, probs)
	case FunctionSigmoid:
		for i, x := range logits {
			probs[i] = sigmoid32(x)
		}
	default:
		copy(probs, logits)
	}
	out := make([]LabelScore, len(probs))
	for i, p := range probs {
		out[i] = LabelScore{Label: c.labels[i], Score: p}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if k > 0 && k < len(out) {
		out = out[:k]
	}
	return out
}
