package asr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// Whisper transcribes with an encoder–decoder Whisper model: log-mel features per 30 s
// window, the encoder through the batching scheduler (windows of concurrent requests share
// encoder runs), and greedy decoding on a sched.DecodeLoop, where every window is one
// sequence that joins the running decode batch after its prompt pass and leaves it at eos or
// the length limit. It is safe for concurrent use.
type Whisper struct {
	enc       *sched.Scheduler
	encOut    int // index of last_hidden_state
	loop      *sched.DecodeLoop
	dec       *whisperDecoder
	tok       *tokenize.Tokenizer
	mel       *LogMel
	pre       PreprocessorConfig
	gen       GenerationConfig
	model     ModelConfig
	cleanup   bool
	tsBegin   int32 // -1: the tokenizer has no timestamp tokens
	langOf    map[int32]string
	precision float64
}

// WhisperConfig configures NewWhisper.
type WhisperConfig struct {
	// Encoder runs encoder_model.onnx (input_features → last_hidden_state).
	Encoder *sched.Scheduler
	// First runs the prompt (decoder_model.onnx or the merged graph), Step the later tokens
	// (decoder_with_past_model.onnx or the same merged session).
	First, Step runtime.Session
	Merged      bool
	Tokenizer   *tokenize.Tokenizer
	Pre         PreprocessorConfig
	Model       ModelConfig
	Generation  GenerationConfig
	// Decode configures the decode loop (batch size, KV budget, admission).
	Decode sched.DecodeConfig
	// CleanUpSpaces applies transformers' clean_up_tokenization to decoded text
	// (tokenizer_config.json clean_up_tokenization_spaces).
	CleanUpSpaces bool
}

// NewWhisper checks the graphs and starts the decode loop.
func NewWhisper(c WhisperConfig) (*Whisper, error) {
	info := c.Encoder.Info()
	if info.Input("input_features") < 0 {
		return nil, errors.New("asr: the Whisper encoder has no input_features input")
	}
	out := info.Output("last_hidden_state")
	if out < 0 {
		return nil, errors.New("asr: the Whisper encoder has no last_hidden_state output")
	}
	mel, err := NewLogMel(c.Pre)
	if err != nil {
		return nil, err
	}
	graphs, err := newDecoderGraphs(c.First, c.Step, c.Merged)
	if err != nil {
		return nil, err
	}
	w := &Whisper{
		enc: c.Encoder, encOut: out, tok: c.Tokenizer, mel: mel, pre: c.Pre, gen: c.Generation,
		model: c.Model, cleanup: c.CleanUpSpaces, tsBegin: -1, langOf: map[int32]string{},
		precision: float64(c.Pre.ChunkLength) / float64(c.Model.MaxSourcePositions),
	}
	rules := &logitRules{noTimestamps: -1, tsBegin: -1, maxInitialTS: -1}
	for _, t := range c.Generation.SuppressTokens {
		rules.suppress = append(rules.suppress, int32(t))
	}
	for _, t := range c.Generation.BeginSuppressTokens {
		rules.beginSuppress = append(rules.beginSuppress, int32(t))
	}
	if nt := c.Generation.NoTimestampsTokenID; nt != nil {
		rules.noTimestamps = int32(*nt)
		// Timestamps need the tokens <|0.00|>… right after <|notimestamps|>; tiny or
		// fine-tuned vocabularies may lack them.
		if tok, ok := c.Tokenizer.IDToToken(int32(*nt + 1)); ok && tok == "<|0.00|>" {
			w.tsBegin = int32(*nt + 1)
		}
	}
	rules.tsBegin = w.tsBegin
	rules.tsEOS = int32(c.Generation.EOSTokenID[0])
	if c.Generation.MaxInitialTimestamp != nil {
		rules.maxInitialTS = *c.Generation.MaxInitialTimestamp
	}
	dec := &whisperDecoder{g: graphs, rules: rules, emptyF32: []float32{}}
	for _, e := range c.Generation.EOSTokenID {
		dec.eos = append(dec.eos, int32(e))
	}
	for tok, id := range c.Generation.LangToID {
		dec.langs = append(dec.langs, int32(id))
		w.langOf[int32(id)] = strings.TrimSuffix(strings.TrimPrefix(tok, "<|"), "|>")
	}
	w.dec = dec
	if w.loop, err = sched.NewDecodeLoop(dec, c.Decode); err != nil {
		return nil, err
	}
	return w, nil
}

// SamplingRate is the rate the model's features expect.
func (w *Whisper) SamplingRate() int { return w.pre.SamplingRate }

// SupportsTimestamps reports whether the vocabulary has timestamp tokens.
func (w *Whisper) SupportsTimestamps() bool { return w.tsBegin >= 0 }

// Close stops the decode loop after its sequences finish (the encoder scheduler and the
// sessions belong to the caller).
func (w *Whisper) Close(ctx context.Context) error { return w.loop.Close(ctx) }

// Transcribe turns mono audio at SamplingRate into text.
func (w *Whisper) Transcribe(ctx context.Context, pcm []float32, o Options) (Result, error) {
	if o.Timestamps && w.tsBegin < 0 {
		return Result{}, invalidf("this model's tokenizer has no timestamp tokens, so `return_timestamps` is not available")
	}
	if o.WordTimestamps {
		return Result{}, invalidf("word-level timestamps are not supported for Whisper; use `return_timestamps: true`")
	}
	prompt, detect, err := w.prompt(o)
	if err != nil {
		return Result{}, err
	}
	maxNew, err := w.maxNewTokens(o, len(prompt))
	if err != nil {
		return Result{}, err
	}
	wins, strided, err := w.windows(len(pcm), o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Windows: len(wins)}

	// Encoder: one feature sequence per window, all windows in one scheduler call. The slot
	// is taken before the features are computed, so the batcher may hold a batch for them
	// (MaxQueueDelay) and windows of concurrent requests share encoder runs.
	et, err := w.enc.Admit()
	if err != nil {
		return Result{}, fmt.Errorf("asr: encoder: %w", err)
	}
	start := time.Now()
	seqs := make([]sched.Sequence, len(wins))
	for i, win := range wins {
		f := w.mel.Compute(pcm[win.start:win.end])
		seqs[i] = sched.Sequence{Features: map[string]runtime.Tensor{
			"input_features": runtime.NewTensor([]int64{int64(w.mel.Mels()), int64(w.mel.Frames())}, f),
		}}
	}
	res.Features = time.Since(start)
	encRes, err := et.Run(ctx, seqs)
	if err != nil {
		return Result{}, fmt.Errorf("asr: encoder: %w", err)
	}
	for _, r := range encRes {
		res.Queue = max(res.Queue, r.Queue)
		res.Inference = max(res.Inference, r.Inference)
	}

	// Decoder: one sequence per window on the decode loop.
	t, err := w.loop.Admit()
	if err != nil {
		return Result{}, fmt.Errorf("asr: decoder: %w", err)
	}
	dseqs := make([]*sched.Seq, len(wins))
	for i, r := range encRes {
		hidden := r.Outputs[w.encOut]
		if len(hidden.Shape) != 2 || hidden.Float32s() == nil {
			t.Release()
			return Result{}, fmt.Errorf("asr: encoder output %v, want float32 [positions, d_model]", hidden)
		}
		st := &whisperSeq{ids: append(make([]int32, 0, len(prompt)+maxNew), prompt...), begin: len(prompt),
			timestamps: o.Timestamps, detectLang: detect, enc: hidden}
		// Cost counts the cross-attention KV (one position per encoder frame) with the
		// decoder positions: it is most of a Whisper sequence's memory. Prompt is the prefill
		// work: the cross-attention keys and values over every frame plus the forced tokens.
		positions := int(hidden.Shape[0])
		dseqs[i] = &sched.Seq{Cost: len(prompt) + maxNew + positions, Prompt: positions + len(prompt),
			MaxSteps: maxNew, State: st}
	}
	decStart := time.Now()
	streams, err := t.Start(ctx, dseqs...)
	if err != nil {
		t.Release()
		return Result{}, fmt.Errorf("asr: decoder: %w", err)
	}
	outs := make([]windowTokens, len(wins))
	for i, st := range streams {
		toks, err := drain(ctx, st)
		if err != nil {
			return Result{}, fmt.Errorf("asr: decoder: %w", err)
		}
		res.Tokens += len(toks)
		// The window's full sequence, prompt included, as generate returns it (the
		// detected language, if any, is in the prompt).
		full := append(append([]int32(nil), stateOf(dseqs[i]).ids[:len(prompt)]...), toks...)
		outs[i] = windowTokens{tokens: full}
		res.Sequences = append(res.Sequences, full)
		if strided {
			sr := float64(w.pre.SamplingRate)
			outs[i].hasStride = true
			outs[i].chunkLen = float64(wins[i].end-wins[i].start) / sr
			outs[i].left, outs[i].right = float64(wins[i].left)/sr, float64(wins[i].right)/sr
		}
	}
	res.Decode = time.Since(decStart)
	ti := tokenInfo{
		tsBegin: w.tsBegin, precision: w.precision,
		special: w.tok.IsSpecial,
		language: func(id int32) (string, bool) {
			l, ok := w.langOf[id]
			return l, ok
		},
		decode: w.decode,
	}
	res.Text, res.Chunks = decodeASR(outs, ti, o.Timestamps)
	return res, nil
}

// drain reads a stream to its end.
func drain(ctx context.Context, st *sched.Stream) ([]int32, error) {
	var out []int32
	for {
		tk, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tk.ID)
	}
}

// decode turns text tokens into a string as WhisperTokenizer.decode does.
func (w *Whisper) decode(ids []int32) string {
	s, err := w.tok.Decode(ids, false)
	if err != nil {
		return ""
	}
	if w.cleanup {
		s = cleanUpTokenization(s)
	}
	return s
}

// cleanUpTokenization is transformers' clean_up_tokenization.
func cleanUpTokenization(s string) string {
	return strings.NewReplacer(" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'", " n't", "n't",
		" 'm", "'m", " 's", "'s", " 've", "'ve", " 're", "'re").Replace(s)
}

// prompt builds the decoder prompt as WhisperForConditionalGeneration.generate does:
// <|startoftranscript|>, the language (given, from forced_decoder_ids, or detected per
// window when the model is multilingual), the task, and <|notimestamps|> unless timestamps
// are requested. detect reports that prompt[1] is a placeholder for detection.
func (w *Whisper) prompt(o Options) (prompt []int32, detect bool, err error) {
	g := w.gen
	prompt = []int32{int32(g.DecoderStartTokenID)}
	forced := map[int]int{}
	for _, f := range g.ForcedDecoderIDs {
		if len(f) == 2 && f[0] != nil && f[1] != nil {
			forced[*f[0]] = *f[1]
		}
	}
	hasLang := false
	switch {
	case o.Language != "":
		if len(g.LangToID) == 0 {
			return nil, false, invalidf("this model is English-only: `language` cannot be set")
		}
		id, ok := g.LangToID[languageToken(o.Language)]
		if !ok {
			return nil, false, invalidf("Unsupported language: %s", o.Language)
		}
		prompt, hasLang = append(prompt, int32(id)), true
	case forced[1] != 0 && len(g.LangToID) > 0:
		prompt, hasLang = append(prompt, int32(forced[1])), true
	case len(g.LangToID) > 0:
		prompt, hasLang, detect = append(prompt, -1), true, true
	}
	switch {
	case o.Task != "":
		id, ok := g.TaskToID[o.Task]
		if !ok {
			return nil, false, invalidf("Unsupported task: %s. Task should be in: [translate transcribe]", o.Task)
		}
		prompt = append(prompt, int32(id))
	case forced[2] != 0 && hasLang:
		prompt = append(prompt, int32(forced[2]))
	case hasLang:
		if id, ok := g.TaskToID["transcribe"]; ok {
			prompt = append(prompt, int32(id))
		}
	}
	if !o.Timestamps && g.NoTimestampsTokenID != nil {
		prompt = append(prompt, int32(*g.NoTimestampsTokenID))
	}
	return prompt, detect, nil
}

// maxNewTokens is max_new_tokens if given, else max_length minus the prompt; the prompt plus
// new tokens may not exceed max_target_positions (transformers raises the same error).
func (w *Whisper) maxNewTokens(o Options, prompt int) (int, error) {
	n := w.gen.MaxLength - prompt
	if o.MaxNewTokens > 0 {
		n = o.MaxNewTokens
	}
	if limit := w.model.MaxTargetPositions; prompt+n > limit {
		return 0, invalidf("The length of `decoder_input_ids`, including special start tokens, prompt tokens, and previous tokens, is %d, and `max_new_tokens` is %d. Thus, the combined length of `decoder_input_ids` and `max_new_tokens` is: %d. This exceeds the `max_target_positions` of the Whisper model: %d. You should either reduce the length of your prompt, or reduce the value of `max_new_tokens`, so that their combined length is less than %d.", prompt, n, prompt+n, limit, limit)
	}
	if n < 1 {
		return 0, invalidf("`max_new_tokens` must be positive")
	}
	return n, nil
}

// windows cuts n samples into the windows to transcribe: one window (padded to 30 s) for
// short audio, else chunk_iter's overlapping windows (30 s, stride 5 s each side by default,
// as the hosted Inference API runs Whisper). strided reports the latter.
func (w *Whisper) windows(n int, o Options) ([]window, bool, error) {
	sr := float64(w.pre.SamplingRate)
	chunk := o.ChunkLength
	if chunk <= 0 {
		if n <= w.pre.NSamples {
			return []window{{start: 0, end: n}}, false, nil
		}
		chunk = float64(w.pre.NSamples) / sr
	}
	if chunk*sr > float64(w.pre.NSamples) {
		return nil, false, invalidf("`chunk_length_s` must be at most %d for this model", w.pre.ChunkLength)
	}
	stride := o.StrideLength
	if stride <= 0 {
		stride = chunk / 6
	}
	chunkLen := int(math.Round(chunk * sr))
	strideLen := int(math.Round(stride * sr))
	if chunkLen < 2*strideLen || chunkLen-2*strideLen <= 0 {
		return nil, false, invalidf("Chunk length must be superior to stride length")
	}
	return chunkWindows(n, chunkLen, strideLen, strideLen), true, nil
}
