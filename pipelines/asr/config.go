package asr

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ModelConfig holds the config.json fields speech recognition uses.
type ModelConfig struct {
	ModelType string `json:"model_type"`
	// Whisper.
	MaxSourcePositions    int  `json:"max_source_positions"` // encoder positions per window (1500)
	MaxTargetPositions    int  `json:"max_target_positions"` // decoder positions (448)
	DecoderStartTokenID   *int `json:"decoder_start_token_id"`
	DecoderAttentionHeads int  `json:"decoder_attention_heads"`
	DModel                int  `json:"d_model"`
	VocabSize             int  `json:"vocab_size"`
	// wav2vec2-style CTC: the product of the feature encoder's strides is how many samples
	// one logit frame covers (transformers' inputs_to_logits_ratio).
	ConvStride []int `json:"conv_stride"`
	ConvKernel []int `json:"conv_kernel"`
	PadTokenID *int  `json:"pad_token_id"`
}

// ParseModelConfig reads config.json.
func ParseModelConfig(b []byte) (ModelConfig, error) {
	var c ModelConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return ModelConfig{}, fmt.Errorf("asr: config.json: %w", err)
	}
	if c.MaxSourcePositions <= 0 {
		c.MaxSourcePositions = 1500
	}
	if c.MaxTargetPositions <= 0 {
		c.MaxTargetPositions = 448
	}
	return c, nil
}

// InputsToLogitsRatio is the number of input samples per CTC logit frame (1 if unknown).
func (c ModelConfig) InputsToLogitsRatio() int {
	r := 1
	for _, s := range c.ConvStride {
		r *= max(s, 1)
	}
	return r
}

// logitFrames is the number of CTC logit frames for n input samples: each feature-encoder
// convolution (no padding) maps L to floor((L − kernel) / stride) + 1. ok is false when the
// config does not describe the convolutions.
func (c ModelConfig) logitFrames(n int) (frames int, ok bool) {
	if len(c.ConvKernel) == 0 || len(c.ConvKernel) != len(c.ConvStride) {
		return 0, false
	}
	for i, k := range c.ConvKernel {
		if n < k || c.ConvStride[i] < 1 {
			return 0, true
		}
		n = (n-k)/c.ConvStride[i] + 1
	}
	return n, true
}

// GenerationConfig is generation_config.json for Whisper.
type GenerationConfig struct {
	DecoderStartTokenID int            `json:"decoder_start_token_id"`
	EOSTokenID          intList        `json:"eos_token_id"`
	BOSTokenID          *int           `json:"bos_token_id"`
	PadTokenID          *int           `json:"pad_token_id"`
	SuppressTokens      []int          `json:"suppress_tokens"`
	BeginSuppressTokens []int          `json:"begin_suppress_tokens"`
	LangToID            map[string]int `json:"lang_to_id"`
	TaskToID            map[string]int `json:"task_to_id"`
	NoTimestampsTokenID *int           `json:"no_timestamps_token_id"`
	MaxLength           int            `json:"max_length"`
	MaxInitialTimestamp *int           `json:"max_initial_timestamp_index"`
	IsMultilingual      *bool          `json:"is_multilingual"`
	// ForcedDecoderIDs is the legacy [[position, id|null], …] prompt (openai/whisper-*).
	ForcedDecoderIDs [][]*int `json:"forced_decoder_ids"`
}

// intList accepts an int or a list of ints (eos_token_id may be either).
type intList []int

func (l *intList) UnmarshalJSON(b []byte) error {
	var one int
	if err := json.Unmarshal(b, &one); err == nil {
		*l = intList{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*l = many
	return nil
}

// ParseGenerationConfig reads generation_config.json (b may be nil: model defaults from cfg).
func ParseGenerationConfig(b []byte, cfg ModelConfig) (GenerationConfig, error) {
	g := GenerationConfig{DecoderStartTokenID: -1}
	if b != nil {
		if err := json.Unmarshal(b, &g); err != nil {
			return g, fmt.Errorf("asr: generation_config.json: %w", err)
		}
	}
	if g.DecoderStartTokenID < 0 && cfg.DecoderStartTokenID != nil {
		g.DecoderStartTokenID = *cfg.DecoderStartTokenID
	}
	if g.DecoderStartTokenID < 0 {
		return g, fmt.Errorf("asr: no decoder_start_token_id in generation_config.json or config.json")
	}
	if len(g.EOSTokenID) == 0 {
		return g, fmt.Errorf("asr: no eos_token_id in generation_config.json")
	}
	if g.MaxLength <= 0 {
		g.MaxLength = cfg.MaxTargetPositions
	}
	return g, nil
}

// whisperLanguages maps Whisper's language names (and the aliases transformers accepts) to
// their codes, so `language` may be given as "german", "de" or "<|de|>".
var whisperLanguages = map[string]string{
	"english": "en", "chinese": "zh", "german": "de", "spanish": "es", "russian": "ru",
	"korean": "ko", "french": "fr", "japanese": "ja", "portuguese": "pt", "turkish": "tr",
	"polish": "pl", "catalan": "ca", "dutch": "nl", "arabic": "ar", "swedish": "sv",
	"italian": "it", "indonesian": "id", "hindi": "hi", "finnish": "fi", "vietnamese": "vi",
	"hebrew": "he", "ukrainian": "uk", "greek": "el", "malay": "ms", "czech": "cs",
	"romanian": "ro", "danish": "da", "hungarian": "hu", "tamil": "ta", "norwegian": "no",
	"thai": "th", "urdu": "ur", "croatian": "hr", "bulgarian": "bg", "lithuanian": "lt",
	"latin": "la", "maori": "mi", "malayalam": "ml", "welsh": "cy", "slovak": "sk",
	"telugu": "te", "persian": "fa", "latvian": "lv", "bengali": "bn", "serbian": "sr",
	"azerbaijani": "az", "slovenian": "sl", "kannada": "kn", "estonian": "et",
	"macedonian": "mk", "breton": "br", "basque": "eu", "icelandic": "is", "armenian": "hy",
	"nepali": "ne", "mongolian": "mn", "bosnian": "bs", "kazakh": "kk", "albanian": "sq",
	"swahili": "sw", "galician": "gl", "marathi": "mr", "punjabi": "pa", "sinhala": "si",
	"khmer": "km", "shona": "sn", "yoruba": "yo", "somali": "so", "afrikaans": "af",
	"occitan": "oc", "georgian": "ka", "belarusian": "be", "tajik": "tg", "sindhi": "sd",
	"gujarati": "gu", "amharic": "am", "yiddish": "yi", "lao": "lo", "uzbek": "uz",
	"faroese": "fo", "haitian creole": "ht", "pashto": "ps", "turkmen": "tk", "nynorsk": "nn",
	"maltese": "mt", "sanskrit": "sa", "luxembourgish": "lb", "myanmar": "my", "tibetan": "bo",
	"tagalog": "tl", "malagasy": "mg", "assamese": "as", "tatar": "tt", "hawaiian": "haw",
	"lingala": "ln", "hausa": "ha", "bashkir": "ba", "javanese": "jw", "sundanese": "su",
	"cantonese": "yue",
	// aliases
	"burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
	"pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
	"castilian": "es", "mandarin": "zh",
}

// languageToken turns a language given as a name, a code or a token into the token form
// ("<|de|>") that lang_to_id uses.
func languageToken(lang string) string {
	l := strings.ToLower(strings.TrimSpace(lang))
	if strings.HasPrefix(l, "<|") && strings.HasSuffix(l, "|>") {
		return l
	}
	if code, ok := whisperLanguages[l]; ok {
		l = code
	}
	return "<|" + l + "|>"
}
