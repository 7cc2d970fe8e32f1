package pipelines

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// TokenClassification serves token-classification (NER) for encoder models with a token-level
// `logits` output. Post-processing reproduces transformers' TokenClassificationPipeline:
// softmax in float32, gather_pre_entities (special tokens skipped, sub-words found from the
// tokenizer), the five aggregation strategies, B-/I- grouping, ignore_labels, and the merge of
// overlapping windows. Texts longer than the model's maximum are split into windows that
// share Stride tokens (transformers' stride with return_overflowing_tokens); all windows of a
// call go through the scheduler together, so they batch with each other and with other
// requests. Nothing is truncated.
type TokenClassification struct {
	tok      *tokenize.Tokenizer
	sched    *sched.Scheduler
	labels   []string
	output   int
	maxLen   int
	content  int // content tokens per window: maxLen less the special tokens of one text
	stride   int // default overlap of consecutive windows
	maxBatch int
	unkID    int32 // -1: the tokenizer has no unknown token
	// wordAware is transformers' test for a "word aware" tokenizer (the model has a
	// continuing_subword_prefix): a token is a sub-word when its string and the text it
	// covers differ in length. Otherwise a token is a sub-word unless a space touches it.
	wordAware bool
}

var _ TokenClassifier = (*TokenClassification)(nil)

// TokenClassificationConfig configures NewTokenClassification.
type TokenClassificationConfig struct {
	Tokenizer *tokenize.Tokenizer
	Scheduler *sched.Scheduler
	// Labels are config.json's id2label in id order; nil names them LABEL_0… as transformers
	// does.
	Labels []string
	// MaxLength is the longest window in tokens, special tokens included.
	MaxLength int
	// MaxClientBatchSize bounds the texts of one call (0: unbounded).
	MaxClientBatchSize int
	// UnkToken is the tokenizer's unknown token (tokenizer_config.json unk_token); such tokens
	// are reported with the text they cover. "" when there is none.
	UnkToken string
}

// NewTokenClassification checks that the scheduler's model produces token-level logits with
// one score per label.
func NewTokenClassification(c TokenClassificationConfig) (*TokenClassification, error) {
	out, labels, err := logitsOutput(c.Scheduler.Info(), 3, c.Labels)
	if err != nil {
		return nil, fmt.Errorf("pipelines: token classification: %w", err)
	}
	empty, err := c.Tokenizer.Encode("", tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		return nil, fmt.Errorf("pipelines: token classification: %w", err)
	}
	content := c.MaxLength - empty.Len()
	if content < 1 {
		return nil, fmt.Errorf("pipelines: token classification: max length %d leaves no room for text after %d special tokens", c.MaxLength, empty.Len())
	}
	t := &TokenClassification{
		tok: c.Tokenizer, sched: c.Scheduler, labels: labels, output: out, maxLen: c.MaxLength,
		content: content, stride: content / 4, maxBatch: c.MaxClientBatchSize, unkID: -1,
		wordAware: c.Tokenizer.ContinuingSubwordPrefix() != "",
	}
	if c.UnkToken != "" {
		if id, ok := c.Tokenizer.TokenToID(c.UnkToken); ok {
			t.unkID = id
		}
	}
	return t, nil
}

// logitsOutput finds the float32 `logits` output of the given rank whose last dimension is
// the label count, and names the labels LABEL_i when config.json has none.
func logitsOutput(info runtime.ModelInfo, rank int, labels []string) (int, []string, error) {
	out := info.Output("logits")
	if out < 0 {
		return 0, nil, fmt.Errorf("the graph has no logits output (outputs: %v)", outputNames(info))
	}
	o := info.Outputs[out]
	if len(o.Shape) != rank || o.DType != runtime.Float32 {
		return 0, nil, fmt.Errorf("output logits is %s%v, want float32 of rank %d", o.DType, o.Shape, rank)
	}
	n := int(o.Shape[rank-1])
	switch {
	case len(labels) == 0 && n <= 0:
		return 0, nil, fmt.Errorf("the label count is unknown: config.json has no id2label and logits is %v", o.Shape)
	case len(labels) == 0:
		labels = make([]string, n)
		for i := range labels {
			labels[i] = fmt.Sprintf("LABEL_%d", i)
		}
	case n > 0 && n != len(labels):
		return 0, nil, fmt.Errorf("config.json has %d labels but logits has %d", len(labels), n)
	}
	return out, labels, nil
}

// Labels returns the labels in id order.
func (t *TokenClassification) Labels() []string { return t.labels }

// MaxLength returns the longest window in tokens.
func (t *TokenClassification) MaxLength() int { return t.maxLen }

// DefaultStride returns the overlap of windows when a call does not choose one.
func (t *TokenClassification) DefaultStride() int { return t.stride }

// window is one model input: a whole text, or one window of a long one.
type window struct {
	text int // index of the text
	// shift maps a token index in the window to its index in the whole text's encoding.
	shift int
	enc   *tokenize.Encoding
}

// ClassifyTokens implements TokenClassifier.
func (t *TokenClassification) ClassifyTokens(ctx context.Context, texts []string, o TokenClassifyOptions) ([][]Entity, Stats, error) {
	stats := Stats{Inputs: len(texts)}
	agg, stride, err := t.checkOptions(o)
	if err != nil {
		return nil, stats, err
	}
	if err := checkTexts(texts, t.maxBatch, &stats); err != nil {
		return nil, stats, err
	}
	ignore := o.IgnoreLabels
	if ignore == nil {
		ignore = []string{"O"}
	}
	// Admission before any work: an overloaded scheduler answers at once.
	ticket, err := t.sched.Admit()
	if err != nil {
		return nil, stats, err
	}
	defer ticket.Release()

	start := time.Now()
	windows, seqs, err := t.windows(texts, stride, &stats)
	stats.Tokenize = time.Since(start)
	if err != nil {
		return nil, stats, err
	}
	res, err := ticket.Run(ctx, seqs)
	if err != nil {
		return nil, stats, err
	}
	out := make([][]Entity, len(texts))
	split := make([]bool, len(texts))
	for k, w := range windows {
		r := res[k]
		stats.Queue = max(stats.Queue, r.Queue)
		stats.Inference = max(stats.Inference, r.Inference)
		logits := r.Outputs[t.output].Float32s()
		if len(logits) != w.enc.Len()*len(t.labels) {
			return nil, stats, fmt.Errorf("pipelines: token classification: %d logits for %d tokens × %d labels", len(logits), w.enc.Len(), len(t.labels))
		}
		ents, err := t.entities(texts[w.text], w, logits, agg, ignore)
		if err != nil {
			return nil, stats, err
		}
		split[w.text] = split[w.text] || w.shift > 0
		out[w.text] = append(out[w.text], ents...)
	}
	for i := range out {
		if split[i] {
			out[i] = mergeOverlapping(out[i])
		}
		if out[i] == nil {
			out[i] = []Entity{}
		}
	}
	return out, stats, nil
}

func (t *TokenClassification) checkOptions(o TokenClassifyOptions) (Aggregation, int, error) {
	agg := o.Aggregation
	switch agg {
	case "":
		agg = AggregateSimple
	case AggregateNone, AggregateSimple, AggregateFirst, AggregateAverage, AggregateMax:
	default:
		return "", 0, Invalidf("aggregation_strategy", "`aggregation_strategy` must be one of none, simple, first, average, max; got %q", string(agg))
	}
	stride := t.stride
	if o.Stride != nil {
		stride = *o.Stride
		if stride < 0 {
			return "", 0, Invalidf("stride", "`stride` must not be negative, got %d", stride)
		}
		if stride >= t.content {
			// transformers' message; the bound here is exact: the window less its special tokens.
			return "", 0, Invalidf("stride", "`stride` must be less than `tokenizer.model_max_length` (or even lower if the tokenizer adds special tokens): %d ≥ %d", stride, t.content)
		}
	}
	return agg, stride, nil
}

// checkTexts validates a call's texts and counts their characters.
func checkTexts(texts []string, maxBatch int, stats *Stats) error {
	if len(texts) == 0 {
		return EmptyError("inputs", "`inputs` cannot be empty")
	}
	if maxBatch > 0 && len(texts) > maxBatch {
		return Invalidf("inputs", "batch size %d > maximum allowed batch size %d", len(texts), maxBatch)
	}
	for i, s := range texts {
		if !utf8.ValidString(s) {
			return Invalidf("inputs", "input %d is not valid UTF-8", i)
		}
		stats.Characters += utf8.RuneCountInString(s)
	}
	return nil
}

// windows tokenizes texts into model inputs: one per text, or overlapping windows for texts
// longer than the model's maximum. Windows without text tokens (an empty text) yield no
// entities and are not run.
func (t *TokenClassification) windows(texts []string, stride int, stats *Stats) ([]window, []sched.Sequence, error) {
	inputs := make([]tokenize.Input, len(texts))
	for i, s := range texts {
		inputs[i] = tokenize.Input{Text: s}
	}
	// Whole texts, split here: tokenizers 0.23 stops tokenizing at max_length (its
	// tokenize_with_limit), so its overflowing windows would silently drop the rest of a long
	// text.
	encs, err := t.tok.EncodeBatch(inputs, tokenize.Options{AddSpecialTokens: true})
	if err != nil {
		return nil, nil, Invalidf("inputs", "tokenization failed: %v", err)
	}
	var windows []window
	var seqs []sched.Sequence
	for i, enc := range encs {
		for _, w := range splitWindows(enc, t.maxLen, stride) {
			if !hasText(w.enc) {
				continue
			}
			w.text = i
			windows = append(windows, w)
			seqs = append(seqs, sched.Sequence{IDs: w.enc.IDs, TypeIDs: w.enc.TypeIDs})
			stats.Tokens += w.enc.Len()
		}
	}
	return windows, seqs, nil
}

// splitWindows cuts an encoding longer than maxLen into windows of at most maxLen tokens
// whose text tokens overlap by stride, each keeping the encoding's leading and trailing
// special tokens: what Rust's Encoding::truncate(max_length, stride) followed by
// post-processing yields when it sees the whole text (the template's special tokens of one
// sequence sit before and after it). An encoding that fits is returned whole.
func splitWindows(enc *tokenize.Encoding, maxLen, stride int) []window {
	n := enc.Len()
	if n <= maxLen {
		return []window{{enc: enc}}
	}
	lo, hi := -1, -1
	for i, id := range enc.SequenceIDs {
		if id == 0 {
			if lo < 0 {
				lo = i
			}
			hi = i + 1
		}
	}
	if lo < 0 {
		return []window{{enc: enc}} // only special tokens: nothing to classify
	}
	content := maxLen - lo - (n - hi)
	step := max(content-stride, 1) // stride < content: checked with the options
	var out []window
	for start := lo; ; start += step {
		stop := min(start+content, hi)
		out = append(out, window{shift: start - lo, enc: cutWindow(enc, lo, hi, start, stop)})
		if stop == hi {
			return out
		}
	}
}

// cutWindow is enc's special tokens before lo and from hi, around its tokens start..stop.
func cutWindow(enc *tokenize.Encoding, lo, hi, start, stop int) *tokenize.Encoding {
	w := &tokenize.Encoding{}
	for _, r := range [][2]int{{0, lo}, {start, stop}, {hi, enc.Len()}} {
		a, b := r[0], r[1]
		w.IDs = append(w.IDs, enc.IDs[a:b]...)
		w.TypeIDs = append(w.TypeIDs, enc.TypeIDs[a:b]...)
		w.Tokens = append(w.Tokens, enc.Tokens[a:b]...)
		w.Offsets = append(w.Offsets, enc.Offsets[a:b]...)
		w.ByteOffsets = append(w.ByteOffsets, enc.ByteOffsets[a:b]...)
		w.SpecialTokensMask = append(w.SpecialTokensMask, enc.SpecialTokensMask[a:b]...)
		w.AttentionMask = append(w.AttentionMask, enc.AttentionMask[a:b]...)
		w.WordIDs = append(w.WordIDs, enc.WordIDs[a:b]...)
		w.SequenceIDs = append(w.SequenceIDs, enc.SequenceIDs[a:b]...)
	}
	return w
}

func hasText(e *tokenize.Encoding) bool {
	for _, m := range e.SpecialTokensMask {
		if m == 0 {
			return true
		}
	}
	return false
}

// preEntity is transformers' pre_entity: one non-special token with its scores.
type preEntity struct {
	word       string
	scores     []float32
	start, end int
	index      int
	subword    bool
}

// entities is transformers' postprocess for one window: softmax, gather_pre_entities,
// aggregate and the ignore_labels filter.
func (t *TokenClassification) entities(text string, w window, logits []float32, agg Aggregation, ignore []string) ([]Entity, error) {
	enc, nl := w.enc, len(t.labels)
	scores := make([]float32, len(logits))
	pre := make([]preEntity, 0, enc.Len())
	for i, id := range enc.IDs {
		if enc.SpecialTokensMask[i] != 0 {
			continue
		}
		row := scores[i*nl : (i+1)*nl]
		softmax32(logits[i*nl:(i+1)*nl], row)
		word, ok := t.tok.IDToToken(id)
		if !ok {
			return nil, fmt.Errorf("pipelines: token classification: unknown token id %d", id)
		}
		off, b := enc.Offsets[i], enc.ByteOffsets[i]
		ref := text[b.Start:b.End]
		var sub bool
		if t.wordAware {
			sub = utf8.RuneCountInString(word) != utf8.RuneCountInString(ref)
		} else {
			sub = off.Start > 0 && !spaceAt(text, b.Start)
		}
		if id == t.unkID {
			word, sub = ref, false
		}
		pre = append(pre, preEntity{word: word, scores: row, start: off.Start, end: off.End, index: i + w.shift, subword: sub})
	}
	var ents []Entity
	if agg == AggregateNone || agg == AggregateSimple {
		ents = make([]Entity, len(pre))
		for i, p := range pre {
			k := argmax32(p.scores)
			ents[i] = Entity{Label: t.labels[k], Score: p.scores[k], Index: p.index, Word: p.word, Start: p.start, End: p.end}
		}
	} else {
		var err error
		if ents, err = t.aggregateWords(pre, agg); err != nil {
			return nil, err
		}
	}
	if agg != AggregateNone {
		var err error
		if ents, err = t.groupEntities(ents); err != nil {
			return nil, err
		}
	}
	kept := ents[:0]
	for _, e := range ents {
		if !contains(ignore, e.Label) {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// spaceAt is the fallback heuristic's test: a space just before or at byte offset i.
func spaceAt(text string, i int) bool {
	if r, _ := utf8.DecodeLastRuneInString(text[:i]); r == ' ' {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[i:])
	return r == ' '
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// aggregateWords is transformers' aggregate_words: tokens are grouped into words (a word is a
// token followed by its sub-words) and each word gets one label.
func (t *TokenClassification) aggregateWords(pre []preEntity, agg Aggregation) ([]Entity, error) {
	var out []Entity
	for lo := 0; lo < len(pre); {
		hi := lo + 1
		for hi < len(pre) && pre[hi].subword {
			hi++
		}
		e, err := t.aggregateWord(pre[lo:hi], agg)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		lo = hi
	}
	return out, nil
}

// aggregateWord is transformers' aggregate_word.
func (t *TokenClassification) aggregateWord(word []preEntity, agg Aggregation) (Entity, error) {
	toks := make([]string, len(word))
	for i, p := range word {
		toks[i] = p.word
	}
	text, err := t.tok.ConvertTokensToString(toks)
	if err != nil {
		return Entity{}, err
	}
	var scores []float32
	switch agg {
	case AggregateFirst:
		scores = word[0].scores
	case AggregateMax:
		// Python's max(): the first token whose best score is the highest.
		best, bestScore := 0, word[0].scores[argmax32(word[0].scores)]
		for i, p := range word[1:] {
			if s := p.scores[argmax32(p.scores)]; s > bestScore {
				best, bestScore = i+1, s
			}
		}
		scores = word[best].scores
	case AggregateAverage:
		// np.nanmean(np.stack(rows), axis=0): rows are added one after the other.
		sum := make([]float32, len(word[0].scores))
		n := make([]int, len(sum))
		for _, p := range word {
			for j, x := range p.scores {
				if x == x {
					sum[j] += x
					n[j]++
				}
			}
		}
		for j := range sum {
			sum[j] = float32(float64(sum[j]) / float64(n[j]))
		}
		scores = sum
	}
	k := argmax32(scores)
	return Entity{Label: t.labels[k], Score: scores[k], Index: -1, Word: text, Start: word[0].start, End: word[len(word)-1].end}, nil
}

// bioTag is transformers' get_tag: "B-X" and "I-X" give X; any other label is a continuation
// ("I") of itself.
func bioTag(label string) (bi byte, tag string) {
	if rest, ok := strings.CutPrefix(label, "B-"); ok {
		return 'B', rest
	}
	if rest, ok := strings.CutPrefix(label, "I-"); ok {
		return 'I', rest
	}
	return 'I', label
}

// groupEntities is transformers' group_entities: consecutive entities of one tag join a
// group unless the newcomer is a B- entity.
func (t *TokenClassification) groupEntities(ents []Entity) ([]Entity, error) {
	var groups []Entity
	for lo := 0; lo < len(ents); {
		hi := lo + 1
		for hi < len(ents) {
			bi, tag := bioTag(ents[hi].Label)
			if _, last := bioTag(ents[hi-1].Label); tag != last || bi == 'B' {
				break
			}
			hi++
		}
		g, err := t.groupSubEntities(ents[lo:hi])
		if err != nil {
			return nil, err
		}
		groups = append(groups, g)
		lo = hi
	}
	return groups, nil
}

// groupSubEntities is transformers' group_sub_entities. The group label is the first label
// after its first "-" (Python's split("-", 1)[-1]), which is not always bioTag's tag.
func (t *TokenClassification) groupSubEntities(ents []Entity) (Entity, error) {
	label := ents[0].Label
	if _, rest, ok := strings.Cut(label, "-"); ok {
		label = rest
	}
	scores := make([]float32, len(ents))
	words := make([]string, len(ents))
	for i, e := range ents {
		scores[i], words[i] = e.Score, e.Word
	}
	word, err := t.tok.ConvertTokensToString(words)
	if err != nil {
		return Entity{}, err
	}
	return Entity{Label: label, Score: nanMean32(scores), Index: -1, Word: word, Start: ents[0].Start, End: ents[len(ents)-1].End}, nil
}

// mergeOverlapping is transformers' aggregate_overlapping_entities for texts split into
// windows: entities sorted by start (stably, so earlier windows first), and of entities that
// start inside the previous kept one only the longest (then the most confident) stays.
func mergeOverlapping(ents []Entity) []Entity {
	if len(ents) == 0 {
		return ents
	}
	sort.SliceStable(ents, func(i, j int) bool { return ents[i].Start < ents[j].Start })
	var out []Entity
	prev := ents[0]
	for _, e := range ents {
		if prev.Start <= e.Start && e.Start < prev.End {
			cur, last := e.End-e.Start, prev.End-prev.Start
			if cur > last || cur == last && e.Score > prev.Score {
				prev = e
			}
		} else {
			out = append(out, prev)
			prev = e
		}
	}
	return append(out, prev)
}
