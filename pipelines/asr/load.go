package asr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// Recognizer is a loaded speech recognition model: Whisper or CTC.
type Recognizer interface {
	// SamplingRate is the audio rate the model expects.
	SamplingRate() int
	// Transcribe turns mono audio at SamplingRate into text.
	Transcribe(ctx context.Context, pcm []float32, o Options) (Result, error)
	// Close releases the schedulers and sessions after in-flight work ends.
	Close(ctx context.Context) error
}

// LoadOptions configure Load.
type LoadOptions struct {
	Opener  runtime.Opener
	Runtime runtime.Options
	// ONNXFile picks a variant of every graph ("quantized" → encoder_model_quantized.onnx …)
	// or, for CTC models, the graph itself.
	ONNXFile string
	// Sessions per encoder graph (default 1; runtime.SessionsPerWorker: one per worker, as
	// many as memory allows).
	Sessions int
	// Sched configures the encoder scheduler; MaxBatchTokens is in encoder positions (Whisper:
	// 1500 per window) or logit frames (CTC) and is converted to input elements here.
	Sched sched.Config
	// Decode configures Whisper's decode loop.
	Decode sched.DecodeConfig
}

// Load opens a speech recognition repo: Whisper (encoder + decoder graphs, tokenizer.json,
// generation_config.json) or CTC (one graph, vocab.json). Both need
// preprocessor_config.json.
func Load(ctx context.Context, repo *models.Repo, o LoadOptions) (r Recognizer, err error) {
	if o.Opener == nil {
		return nil, errors.New("asr: load: no runtime opener")
	}
	cfgBytes, err := readOptional(repo, "config.json")
	if err != nil {
		return nil, err
	}
	cfg, err := ParseModelConfig(orEmpty(cfgBytes))
	if err != nil {
		return nil, err
	}
	preBytes, err := readOptional(repo, "preprocessor_config.json")
	if err != nil {
		return nil, err
	}
	if preBytes == nil {
		return nil, fmt.Errorf("asr: %s has no preprocessor_config.json (the sampling rate and features come from it)", repo.ID)
	}
	pre, err := ParsePreprocessorConfig(preBytes)
	if err != nil {
		return nil, err
	}
	var closers []func()
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
		}
	}()
	open := func(path string, n int) ([]runtime.Session, error) {
		out := make([]runtime.Session, 0, n)
		for i := 0; i < n; i++ {
			s, err := o.Opener.Open(ctx, repo.Path(path), o.Runtime)
			if err != nil {
				return nil, fmt.Errorf("asr: load %s: %w", path, err)
			}
			closers = append(closers, func() { s.Close() })
			out = append(out, s)
		}
		return out, nil
	}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}

	if cfg.ModelType == "whisper" || strings.Contains(pre.FeatureExtractorType, "Whisper") {
		gs, err := findWhisperGraphs(repo, o.ONNXFile)
		if err != nil {
			return nil, err
		}
		encSessions, err := open(gs.encoder, runtime.SessionCount(o.Sessions, o.Sched.Workers, repo.Path(gs.encoder)))
		if err != nil {
			return nil, err
		}
		// The decode loop is one goroutine: one session per decoder graph is enough.
		first, err := open(gs.first, 1)
		if err != nil {
			return nil, err
		}
		step := first[0]
		if !gs.merged {
			s, err := open(gs.step, 1)
			if err != nil {
				return nil, err
			}
			step = s[0]
		}
		tokBytes, err := readOptional(repo, "tokenizer.json")
		if err != nil {
			return nil, err
		}
		if tokBytes == nil {
			return nil, fmt.Errorf("asr: %s has no tokenizer.json", repo.ID)
		}
		tok, err := tokenize.FromFile(repo.Path("tokenizer.json"))
		if err != nil {
			return nil, fmt.Errorf("asr: %s: %w", repo.ID, err)
		}
		genBytes, err := readOptional(repo, "generation_config.json")
		if err != nil {
			return nil, err
		}
		gen, err := ParseGenerationConfig(genBytes, cfg)
		if err != nil {
			return nil, err
		}
		scfg := o.Sched
		// One window costs mels × frames elements for its max_source_positions positions.
		perPosition := pre.FeatureSize * pre.NbMaxFrames / cfg.MaxSourcePositions
		scfg.MaxBatchTokens = max(scfg.MaxBatchTokens, 0)
		if scfg.MaxBatchTokens == 0 {
			scfg.MaxBatchTokens = 8192
		}
		scfg.MaxBatchTokens *= max(perPosition, 1)
		enc, err := sched.New(encSessions, scfg)
		if err != nil {
			return nil, err
		}
		w, err := NewWhisper(WhisperConfig{Encoder: enc, First: first[0], Step: step, Merged: gs.merged,
			Tokenizer: tok, Pre: pre, Model: cfg, Generation: gen, Decode: o.Decode,
			CleanUpSpaces: cleanUpSpaces(repo)})
		if err != nil {
			enc.Close(ctx)
			return nil, err
		}
		return &closing{Recognizer: w, close: func(ctx context.Context) error {
			err := errors.Join(w.Close(ctx), enc.Close(ctx))
			closeAll()
			return err
		}}, nil
	}

	graph, err := repo.ONNXFile(o.ONNXFile)
	if err != nil {
		return nil, err
	}
	sessions, err := open(graph, runtime.SessionCount(o.Sessions, o.Sched.Workers, repo.Path(graph)))
	if err != nil {
		return nil, err
	}
	vocab, err := loadCTCVocab(repo)
	if err != nil {
		return nil, err
	}
	scfg := o.Sched
	if scfg.MaxBatchTokens <= 0 {
		scfg.MaxBatchTokens = 8192
	}
	scfg.MaxBatchTokens *= cfg.InputsToLogitsRatio()
	enc, err := sched.New(sessions, scfg)
	if err != nil {
		return nil, err
	}
	c, err := NewCTC(CTCConfig{Scheduler: enc, Pre: pre, Model: cfg, Vocab: vocab})
	if err != nil {
		enc.Close(ctx)
		return nil, err
	}
	return &closing{Recognizer: c, close: func(ctx context.Context) error {
		err := enc.Close(ctx)
		closeAll()
		return err
	}}, nil
}

// closing adds the release of schedulers and sessions to a Recognizer's Close.
type closing struct {
	Recognizer
	close func(ctx context.Context) error
}

func (c *closing) Close(ctx context.Context) error { return c.close(ctx) }

// Unwrap returns the Recognizer inside (tests reach the Whisper or CTC value through it).
func (c *closing) Unwrap() Recognizer { return c.Recognizer }

// whisperGraphs names the graphs of a Whisper repo.
type whisperGraphs struct {
	encoder, first, step string
	merged               bool
}

// findWhisperGraphs picks encoder_model plus either decoder_model and
// decoder_with_past_model (optimum) or decoder_model_merged (transformers.js), under onnx/
// or at the root, with the variant suffix of onnxFile if one is given ("quantized" →
// encoder_model_quantized.onnx). Repos pulled from the Hub list their chosen graphs.
func findWhisperGraphs(repo *models.Repo, onnxFile string) (whisperGraphs, error) {
	suffix := ""
	if onnxFile != "" {
		suffix = "_" + strings.TrimPrefix(strings.TrimSuffix(onnxFile, ".onnx"), "_")
	}
	find := func(role string) string {
		for _, dir := range []string{"onnx/", ""} {
			if p := dir + role + suffix + ".onnx"; repo.Has(p) {
				return p
			}
		}
		return ""
	}
	g := whisperGraphs{encoder: find("encoder_model")}
	dec, past, merged := find("decoder_model"), find("decoder_with_past_model"), find("decoder_model_merged")
	switch {
	case g.encoder == "":
		return g, fmt.Errorf("asr: %s has no encoder_model%s.onnx", repo.ID, suffix)
	case dec != "" && past != "":
		g.first, g.step = dec, past
	case merged != "":
		g.first, g.step, g.merged = merged, merged, true
	default:
		return g, fmt.Errorf("asr: %s needs decoder_model%s.onnx with decoder_with_past_model%[2]s.onnx, or decoder_model_merged%[2]s.onnx", repo.ID, suffix)
	}
	return g, nil
}

// cleanUpSpaces reads clean_up_tokenization_spaces from tokenizer_config.json.
func cleanUpSpaces(repo *models.Repo) bool {
	var c struct {
		Clean bool `json:"clean_up_tokenization_spaces"`
	}
	if repo.Has("tokenizer_config.json") && repo.ReadJSON("tokenizer_config.json", &c) == nil {
		return c.Clean
	}
	return false
}

func readOptional(repo *models.Repo, name string) ([]byte, error) {
	if !repo.Has(name) {
		return nil, nil
	}
	b, err := os.ReadFile(repo.Path(name))
	if err != nil {
		return nil, fmt.Errorf("asr: %w", err)
	}
	return b, nil
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte("{}")
	}
	return b
}

// loadCTCVocab reads vocab.json (token → id) and the Wav2Vec2CTCTokenizer settings of
// tokenizer_config.json.
func loadCTCVocab(repo *models.Repo) (CTCVocab, error) {
	var v CTCVocab
	b, err := readOptional(repo, "vocab.json")
	if err != nil {
		return v, err
	}
	if b == nil {
		return v, fmt.Errorf("asr: %s has no vocab.json", repo.ID)
	}
	var tokens map[string]int
	if err := json.Unmarshal(b, &tokens); err != nil {
		return v, fmt.Errorf("asr: vocab.json: %w", err)
	}
	v.Tokens = make([]string, 0, len(tokens))
	for tok, id := range tokens {
		if id < 0 || id > 1<<20 {
			return v, fmt.Errorf("asr: vocab.json: id %d", id)
		}
		for len(v.Tokens) <= id {
			v.Tokens = append(v.Tokens, "")
		}
		v.Tokens[id] = tok
	}
	var tc struct {
		Pad       any     `json:"pad_token"`
		Delimiter *string `json:"word_delimiter_token"`
		Replace   *string `json:"replace_word_delimiter_char"`
		Clean     *bool   `json:"clean_up_tokenization_spaces"`
	}
	if repo.Has("tokenizer_config.json") {
		if err := repo.ReadJSON("tokenizer_config.json", &tc); err != nil {
			return v, err
		}
	}
	v.Pad, v.Delimiter, v.Replace = "<pad>", "|", " "
	switch p := tc.Pad.(type) {
	case string:
		v.Pad = p
	case map[string]any:
		if s, ok := p["content"].(string); ok {
			v.Pad = s
		}
	}
	if tc.Delimiter != nil {
		v.Delimiter = *tc.Delimiter
	}
	if tc.Replace != nil {
		v.Replace = *tc.Replace
	}
	v.CleanUp = tc.Clean != nil && *tc.Clean
	return v, nil
}
