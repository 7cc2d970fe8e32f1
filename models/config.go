package models

import (
	"fmt"
	"sort"
	"strconv"
)

// Config holds the config.json fields Infergo uses.
type Config struct {
	ModelType             string            `json:"model_type"`
	Architectures         []string          `json:"architectures"`
	HiddenSize            int               `json:"hidden_size"`
	MaxPositionEmbeddings int               `json:"max_position_embeddings"`
	NPositions            int               `json:"n_positions"` // GPT-2 spelling
	ID2Label              map[string]string `json:"id2label"`
	ProblemType           string            `json:"problem_type"`
	PadTokenID            *int64            `json:"pad_token_id"`
	VocabSize             int               `json:"vocab_size"`
	TypeVocabSize         int               `json:"type_vocab_size"`
}

// Config reads config.json; a repo without one yields the zero Config.
func (r *Repo) Config() (Config, error) {
	var c Config
	if !r.Has("config.json") {
		return c, nil
	}
	err := r.ReadJSON("config.json", &c)
	return c, err
}

// MaxPositions returns the model's position limit (0 when unknown).
func (c Config) MaxPositions() int {
	if c.MaxPositionEmbeddings > 0 {
		return c.MaxPositionEmbeddings
	}
	return c.NPositions
}

// Labels returns id2label as a slice indexed by id. Ids must be 0..n-1.
func (c Config) Labels() ([]string, error) {
	if len(c.ID2Label) == 0 {
		return nil, nil
	}
	ids := make([]int, 0, len(c.ID2Label))
	for k := range c.ID2Label {
		id, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("models: id2label key %q is not an integer", k)
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	labels := make([]string, len(ids))
	for i, id := range ids {
		if id != i {
			return nil, fmt.Errorf("models: id2label ids are not 0..%d", len(ids)-1)
		}
		labels[i] = c.ID2Label[strconv.Itoa(id)]
	}
	return labels, nil
}

// TokenizerConfig holds the tokenizer_config.json fields Infergo uses.
type TokenizerConfig struct {
	ModelMaxLength float64 `json:"model_max_length"` // float: transformers writes 1e30 for "unbounded"
	DoLowerCase    *bool   `json:"do_lower_case"`
	PadToken       any     `json:"pad_token"`
}

// TokenizerConfig reads tokenizer_config.json; missing yields the zero value.
func (r *Repo) TokenizerConfig() (TokenizerConfig, error) {
	var c TokenizerConfig
	if !r.Has("tokenizer_config.json") {
		return c, nil
	}
	err := r.ReadJSON("tokenizer_config.json", &c)
	return c, err
}

// Pooling names a sentence-transformers pooling mode.
type Pooling string

// Pooling modes of sentence_transformers.models.Pooling.
const (
	PoolMean      Pooling = "mean"
	PoolCLS       Pooling = "cls"
	PoolMax       Pooling = "max"
	PoolMeanSqrt  Pooling = "mean_sqrt_len"
	PoolLastToken Pooling = "lasttoken"
)

// SentenceTransformers describes a sentence-transformers repo (modules.json).
type SentenceTransformers struct {
	Pooling      Pooling
	Normalize    bool
	MaxSeqLength int // from sentence_bert_config.json; 0 when absent
	Dimension    int // word_embedding_dimension of the pooling config
}

type stModule struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

type stPoolingConfig struct {
	Dimension int  `json:"word_embedding_dimension"`
	CLS       bool `json:"pooling_mode_cls_token"`
	Mean      bool `json:"pooling_mode_mean_tokens"`
	Max       bool `json:"pooling_mode_max_tokens"`
	MeanSqrt  bool `json:"pooling_mode_mean_sqrt_len_tokens"`
	LastToken bool `json:"pooling_mode_lasttoken"`
	Weighted  bool `json:"pooling_mode_weightedmean_tokens"`
}

// SentenceTransformers reads modules.json and the modules Infergo supports. It returns nil
// (and no error) for repos that are not sentence-transformers repos.
func (r *Repo) SentenceTransformers() (*SentenceTransformers, error) {
	if !r.Has("modules.json") {
		return nil, nil
	}
	var modules []stModule
	if err := r.ReadJSON("modules.json", &modules); err != nil {
		return nil, err
	}
	st := &SentenceTransformers{}
	hasPooling := false
	for _, m := range modules {
		switch m.Type {
		case "sentence_transformers.models.Transformer":
		case "sentence_transformers.models.Pooling":
			var pc stPoolingConfig
			if err := r.ReadJSON(pathJoin(m.Path, "config.json"), &pc); err != nil {
				return nil, err
			}
			p, err := pc.mode()
			if err != nil {
				return nil, fmt.Errorf("models: %s: %w", pathJoin(m.Path, "config.json"), err)
			}
			st.Pooling, st.Dimension, hasPooling = p, pc.Dimension, true
		case "sentence_transformers.models.Normalize":
			st.Normalize = true
		default:
			return nil, fmt.Errorf("models: %s: sentence-transformers module %s is not supported", r.ID, m.Type)
		}
	}
	if !hasPooling {
		// sentence-transformers itself falls back to mean pooling without a Pooling module.
		st.Pooling = PoolMean
	}
	if r.Has("sentence_bert_config.json") {
		var sb struct {
			MaxSeqLength int `json:"max_seq_length"`
		}
		if err := r.ReadJSON("sentence_bert_config.json", &sb); err != nil {
			return nil, err
		}
		st.MaxSeqLength = sb.MaxSeqLength
	}
	return st, nil
}

func (pc stPoolingConfig) mode() (Pooling, error) {
	var modes []Pooling
	if pc.CLS {
		modes = append(modes, PoolCLS)
	}
	if pc.Mean {
		modes = append(modes, PoolMean)
	}
	if pc.Max {
		modes = append(modes, PoolMax)
	}
	if pc.MeanSqrt {
		modes = append(modes, PoolMeanSqrt)
	}
	if pc.LastToken {
		modes = append(modes, PoolLastToken)
	}
	if pc.Weighted {
		return "", fmt.Errorf("weighted-mean pooling is not supported")
	}
	switch len(modes) {
	case 0:
		return "", fmt.Errorf("no pooling mode is enabled")
	case 1:
		return modes[0], nil
	}
	// Several modes concatenate their outputs in sentence-transformers; rare, and not served.
	return "", fmt.Errorf("combined pooling modes %v are not supported", modes)
}

// readmeTag extracts pipeline_tag from the README's YAML front matter, if any.
func (r *Repo) readmeTag() string {
	if !r.Has("README.md") {
		return ""
	}
	b, err := readHead(r.Path("README.md"), 16<<10)
	if err != nil {
		return ""
	}
	return frontMatterValue(string(b), "pipeline_tag")
}

// InferTask picks the task for a repo: the README's pipeline_tag when present; else
// sentence-transformers repos serve feature-extraction (embeddings); else the architecture or
// model type in config.json; else the graph's outputs decide (outputs maps each output name
// to its rank): token-level logits are token classification, sequence-level logits text
// classification, hidden states feature extraction.
func (r *Repo) InferTask(outputs map[string]int) (string, error) {
	if tag := r.readmeTag(); tag != "" {
		return tag, nil
	}
	st, err := r.SentenceTransformers()
	if err != nil {
		return "", err
	}
	if st != nil {
		return "feature-extraction", nil
	}
	cfg, err := r.Config()
	if err != nil {
		return "", err
	}
	for _, arch := range cfg.Architectures {
		if t := taskOfArchitecture(arch); t != "" {
			return t, nil
		}
	}
	switch cfg.ModelType {
	case "whisper", "wav2vec2", "hubert", "wavlm":
		return "automatic-speech-recognition", nil
	case "gpt2", "gpt_neo", "gptj", "llama", "mistral", "qwen2", "qwen3", "phi", "phi3", "gemma", "gemma2", "opt", "bloom", "falcon":
		return "text-generation", nil
	}
	if rank, ok := outputs["logits"]; ok {
		switch rank {
		case 3:
			return "token-classification", nil
		case 2:
			return "text-classification", nil
		}
	}
	for _, name := range []string{"last_hidden_state", "token_embeddings", "sentence_embedding"} {
		if _, ok := outputs[name]; ok {
			return "feature-extraction", nil
		}
	}
	return "", fmt.Errorf("models: cannot infer the task of %s (no pipeline_tag, modules.json, known architecture or recognised outputs); pass --task", r.ID)
}

func taskOfArchitecture(arch string) string {
	switch {
	case hasSuffix(arch, "ForTokenClassification"):
		return "token-classification"
	case hasSuffix(arch, "ForSequenceClassification"):
		return "text-classification"
	case hasSuffix(arch, "ForCausalLM"), hasSuffix(arch, "LMHeadModel"):
		return "text-generation"
	case hasSuffix(arch, "ForConditionalGeneration") && (hasPrefix(arch, "Whisper")):
		return "automatic-speech-recognition"
	case hasSuffix(arch, "ForCTC"):
		return "automatic-speech-recognition"
	case hasSuffix(arch, "Model"):
		return "feature-extraction"
	}
	return ""
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }
