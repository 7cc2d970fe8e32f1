package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/pipelines/textgen"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// TextGeneration serves text-generation for decoder-only models: it validates parameters,
// tokenizes the prompt, runs its sequences through the continuous-batching decode loop
// (runtime/sched.DecodeLoop, driven by a textgen.Decoder) and turns tokens into text as they
// arrive — incremental detokenization and stop sequences run here, on the caller's goroutine,
// never in the loop every request shares.
type TextGeneration struct {
	tok      *tokenize.Tokenizer
	loops    []*sched.DecodeLoop
	defaults GenerateParams
	eos      []int32
	// maxTotal bounds prompt + new tokens (the model's positions); maxNew bounds one
	// request's new tokens.
	maxTotal, maxNew int
	maxStops         int
}

var _ TextGenerator = (*TextGeneration)(nil)

// TextGenerationConfig configures NewTextGeneration.
type TextGenerationConfig struct {
	Tokenizer *tokenize.Tokenizer
	// Loops run the sequences; each request goes to the one with the fewest requests.
	Loops []*sched.DecodeLoop
	// Defaults are the model's generation defaults (generation_config.json).
	Defaults GenerateParams
	// EOS lists the end-of-sequence ids.
	EOS []int32
	// MaxTotalTokens bounds prompt plus new tokens (the model's position limit).
	MaxTotalTokens int
	// MaxNewTokens bounds the new tokens of one sequence (default MaxTotalTokens).
	MaxNewTokens int
	// MaxStopSequences bounds Stop (default 4, as TGI).
	MaxStopSequences int
}

// NewTextGeneration assembles the pipeline.
func NewTextGeneration(c TextGenerationConfig) (*TextGeneration, error) {
	if c.Tokenizer == nil || len(c.Loops) == 0 {
		return nil, errors.New("pipelines: text generation needs a tokenizer and a decode loop")
	}
	if c.MaxTotalTokens < 2 {
		return nil, fmt.Errorf("pipelines: text generation: max total tokens %d", c.MaxTotalTokens)
	}
	g := &TextGeneration{tok: c.Tokenizer, loops: c.Loops, defaults: c.Defaults, eos: c.EOS,
		maxTotal: c.MaxTotalTokens, maxNew: c.MaxNewTokens, maxStops: c.MaxStopSequences}
	if g.maxNew <= 0 || g.maxNew > g.maxTotal {
		g.maxNew = g.maxTotal
	}
	if g.maxStops <= 0 {
		g.maxStops = 4
	}
	return g, nil
}

// GenerateDefaults implements TextGenerator.
func (g *TextGeneration) GenerateDefaults() GenerateParams {
	p := g.defaults
	p.Stop = slices.Clone(p.Stop)
	return p
}

// MaxTotalTokens is the longest prompt plus generation.
func (g *TextGeneration) MaxTotalTokens() int { return g.maxTotal }

// pick returns the loop with the fewest requests in flight. Each loop admits its share of
// the request limit, so the least busy one refusing means all are full.
func (g *TextGeneration) pick() *sched.DecodeLoop {
	best := g.loops[0]
	for _, l := range g.loops[1:] {
		if l.InFlight() < best.InFlight() {
			best = l
		}
	}
	return best
}

// validate checks p with transformers' rules and messages where they exist.
func (g *TextGeneration) validate(p GenerateParams) error {
	switch {
	case p.MaxNewTokens < 0 || (p.MaxNewTokens == 0 && p.MaxLength <= 0):
		return Invalidf("max_new_tokens", "`max_new_tokens` must be strictly positive")
	case p.MaxNewTokens > g.maxNew:
		return Invalidf("max_new_tokens", "`max_new_tokens` must be <= %d. Given: %d", g.maxNew, p.MaxNewTokens)
	case p.MinNewTokens < 0:
		return Invalidf("min_new_tokens", "`min_new_tokens` must be positive")
	case p.NumReturnSequences < 1:
		return Invalidf("num_return_sequences", "`num_return_sequences` must be strictly positive")
	case p.RepetitionPenalty <= 0:
		return Invalidf("repetition_penalty", "`penalty` has to be a strictly positive float, but is %s", pyFloat(p.RepetitionPenalty))
	case p.MaxTime < 0:
		return Invalidf("max_time", "`max_time` must be positive")
	case len(p.Stop) > g.maxStops:
		return Invalidf("stop", "`stop` supports up to %d stop sequences. Given: %d", g.maxStops, len(p.Stop))
	}
	if !p.DoSample {
		return nil
	}
	switch {
	case p.Temperature <= 0:
		return Invalidf("temperature", "`temperature` (=%s) has to be a strictly positive float, otherwise your next token scores will be invalid. If you're looking for greedy decoding strategies, set `do_sample=False`.", pyFloat(p.Temperature))
	case p.TopK < 0:
		return Invalidf("top_k", "`top_k` has to be a strictly positive integer, but is %d", p.TopK)
	case p.TopP < 0 || p.TopP > 1:
		return Invalidf("top_p", "`top_p` has to be a float > 0 and < 1, but is %s", pyFloat(p.TopP))
	}
	return nil
}

// pyFloat prints f as Python's repr would for ordinary values (1.0, 0.5).
func pyFloat(f float64) string {
	s := fmt.Sprint(f)
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'N' || c == 'I' {
			return s
		}
	}
	return s + ".0"
}

// Generate implements TextGenerator.
func (g *TextGeneration) Generate(ctx context.Context, prompt string, p GenerateParams, emit func(GenerateEvent) error) ([]Generation, Stats, error) {
	stats := Stats{Inputs: 1, Characters: utf8.RuneCountInString(prompt)}
	if prompt == "" {
		return nil, stats, EmptyError("inputs", "`inputs` cannot be empty")
	}
	if !utf8.ValidString(prompt) {
		return nil, stats, Invalidf("inputs", "input is not valid UTF-8")
	}
	if err := g.validate(p); err != nil {
		return nil, stats, err
	}
	// Cheap bound before tokenizing: a token stands for at least one byte... and at most
	// maxCharsPerToken characters, so longer prompts cannot fit.
	if stats.Characters > maxCharsPerToken*g.maxTotal {
		return nil, stats, Invalidf("inputs", "`inputs` must have less than %d tokens", g.maxTotal)
	}
	ticket, err := g.pick().Admit()
	if err != nil {
		return nil, stats, err
	}
	defer ticket.Release()

	start := time.Now()
	enc, err := g.tok.Encode(prompt, tokenize.Options{AddSpecialTokens: true})
	stats.Tokenize = time.Since(start)
	if err != nil {
		return nil, stats, Invalidf("inputs", "tokenization failed: %v", err)
	}
	ids := enc.IDs
	stats.Tokens = len(ids)
	if len(ids) == 0 {
		return nil, stats, EmptyError("inputs", "`inputs` cannot be empty")
	}
	if p.MaxNewTokens == 0 {
		// transformers: max_length counts the prompt; a prompt that already reaches it gets
		// one token (with a warning there).
		p.MaxNewTokens = max(p.MaxLength-len(ids), 1)
	}
	if p.MinLength > 0 {
		p.MinNewTokens = max(p.MinNewTokens, p.MinLength-len(ids))
	}
	if len(ids)+p.MaxNewTokens > g.maxTotal {
		return nil, stats, Invalidf("inputs", "`inputs` tokens + `max_new_tokens` must be <= %d. Given: %d `inputs` tokens and %d `max_new_tokens`", g.maxTotal, len(ids), p.MaxNewTokens)
	}

	var seed *uint64
	sp := textgen.Sampling{DoSample: p.DoSample, Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP,
		RepetitionPenalty: p.RepetitionPenalty, MinNewTokens: p.MinNewTokens}
	if p.DoSample {
		s := rand.Uint64()
		if p.Seed != nil {
			s = *p.Seed
		}
		sp.Seed, seed = s, &s
	}
	seqs := make([]*sched.Seq, p.NumReturnSequences)
	var deadline time.Time
	if p.MaxTime > 0 {
		deadline = start.Add(p.MaxTime)
	}
	for i := range seqs {
		seqs[i] = &sched.Seq{Cost: len(ids) + p.MaxNewTokens, Prompt: len(ids), MaxSteps: p.MaxNewTokens, Deadline: deadline,
			State: textgen.NewSequence(ids, sp, g.eos, uint64(i))}
	}
	streams, err := ticket.Start(ctx, seqs...)
	if err != nil {
		return nil, stats, err
	}
	stopAll := func() {
		for _, st := range streams {
			st.Stop()
		}
	}
	out := make([]Generation, len(streams))
	for i, st := range streams {
		gen, err := g.collect(ctx, i, st, ids, p, deadline, emit, &stats, start)
		if err != nil {
			stopAll()
			return nil, stats, err
		}
		gen.Seed = seed
		out[i] = gen
	}
	stats.Inference = time.Since(start) - stats.Queue - stats.Tokenize
	return out, stats, nil
}

// collect reads one sequence's tokens, turns them into text and watches for stop sequences.
func (g *TextGeneration) collect(ctx context.Context, index int, st *sched.Stream, prompt []int32, p GenerateParams,
	deadline time.Time, emit func(GenerateEvent) error, stats *Stats, start time.Time) (Generation, error) {
	stops := p.Stop
	gen := Generation{StopIndex: -1}
	detok := textgen.NewDetokenizer(g.tok, prompt)
	match := textgen.NewStopMatcher(stops)
	var ids []int32
	safe := 0
	for {
		t, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return gen, err
		}
		if gen.FinishReason != "" {
			continue // tokens computed after a stop sequence matched: dropped
		}
		if len(gen.Tokens) == 0 && index == 0 {
			stats.Queue = time.Since(start) - stats.Tokenize
		}
		tok := GeneratedToken{ID: t.ID, LogProb: t.LogProb, Special: g.tok.IsSpecial(t.ID)}
		ids = append(ids, t.ID)
		if tok.Special {
			tok.Text, _ = g.tok.IDToToken(t.ID)
		} else if tok.Text, err = detok.Next(t.ID); err != nil {
			return gen, fmt.Errorf("pipelines: decode token %d: %w", t.ID, err)
		}
		gen.Tokens = append(gen.Tokens, tok)
		ev := GenerateEvent{Index: index, Token: tok}
		if !tok.Special {
			if at, _, ok := match.Add(tok.Text); ok {
				st.Stop()
				gen.FinishReason, gen.StopIndex = FinishStopSequence, at
				ev.Safe = match.Text()[safe:at]
				safe = at
			} else if n := match.Safe(); n > safe {
				ev.Safe = match.Text()[safe:n]
				safe = n
			}
		}
		ev.Last = gen.FinishReason != "" || slices.Contains(g.eos, t.ID) || len(gen.Tokens) == p.MaxNewTokens ||
			(!deadline.IsZero() && !time.Now().Before(deadline))
		if emit != nil {
			if err := emit(ev); err != nil {
				st.Stop()
				return gen, err
			}
		}
	}
	if gen.FinishReason == "" {
		switch st.Reason() {
		case sched.FinishEOS:
			gen.FinishReason = FinishEOSToken
		default: // length, max_time
			gen.FinishReason = FinishLength
		}
	}
	text, err := g.tok.Decode(ids, true)
	if err != nil {
		return gen, fmt.Errorf("pipelines: decode output: %w", err)
	}
	gen.Text = text
	if gen.StopIndex >= 0 {
		// The full decode can differ from the incremental text only in characters the
		// stream withheld; find the stop sequence again in the final text.
		stop := match.Text()[gen.StopIndex:]
		for _, s := range stops {
			if s != "" && strings.HasPrefix(stop, s) {
				if i := strings.Index(text, s); i >= 0 {
					gen.StopIndex = i
				}
				break
			}
		}
	}
	return gen, nil
}
