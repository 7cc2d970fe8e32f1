package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines/textgen"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
	"github.com/infergo/infergo/tokenize"
)

// decoderGraphs is the order in which a text-generation graph is chosen when none is named:
// graphs with a KV cache first (merged, then with-past), then a plain export, which may or
// may not take past inputs (its inputs decide), then a cache-less decoder.
var decoderGraphs = []string{
	"onnx/decoder_model_merged.onnx", "decoder_model_merged.onnx",
	"onnx/decoder_with_past_model.onnx", "decoder_with_past_model.onnx",
	"onnx/model.onnx", "model.onnx",
	"onnx/decoder_model.onnx", "decoder_model.onnx",
}

// decoderGraph returns the graph to load for text generation. A repo pulled from the Hub
// lists the graphs the resolver chose for the task and variant: the preferred one of those.
func decoderGraph(repo *models.Repo, name string) (string, error) {
	for _, role := range []string{"decoder_model_merged", "decoder_with_past_model", "model", "decoder_model"} {
		for _, g := range repo.Graphs {
			if strings.HasPrefix(path.Base(g), role) && repo.Has(g) {
				return g, nil
			}
		}
	}
	if name != "" {
		return repo.ONNXFile(name)
	}
	for _, g := range decoderGraphs {
		if repo.Has(g) {
			return g, nil
		}
	}
	return repo.ONNXFile("")
}

// generationConfig is what generation_config.json may set (transformers GenerationConfig).
type generationConfig struct {
	EOSTokenID        json.RawMessage `json:"eos_token_id"` // int or [int]
	MaxNewTokens      *int            `json:"max_new_tokens"`
	MinNewTokens      *int            `json:"min_new_tokens"`
	DoSample          *bool           `json:"do_sample"`
	Temperature       *float64        `json:"temperature"`
	TopK              *int            `json:"top_k"`
	TopP              *float64        `json:"top_p"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
}

// parseIDs reads an int, a list of ints or null.
func parseIDs(raw json.RawMessage) ([]int32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int32
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int32{one}, nil
	}
	var many []int32
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("eos_token_id: want an integer or a list of integers: %w", err)
	}
	return many, nil
}

// generationDefaults reads generation_config.json (else config.json's eos_token_id) over
// transformers' GenerationConfig defaults (greedy, max_length 20 → 20 new tokens here,
// temperature 1, top_k 50, top_p 1, no repetition penalty).
func generationDefaults(repo *models.Repo) (GenerateParams, []int32, error) {
	p := GenerateParams{MaxNewTokens: 20, Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1, NumReturnSequences: 1}
	var gc generationConfig
	for _, name := range []string{"config.json", "generation_config.json"} {
		if !repo.Has(name) {
			continue
		}
		var c generationConfig
		if err := repo.ReadJSON(name, &c); err != nil {
			return p, nil, err
		}
		if name == "config.json" {
			gc.EOSTokenID = c.EOSTokenID // the only generation field config.json contributes
			continue
		}
		if len(c.EOSTokenID) == 0 {
			c.EOSTokenID = gc.EOSTokenID
		}
		gc = c
	}
	eos, err := parseIDs(gc.EOSTokenID)
	if err != nil {
		return p, nil, fmt.Errorf("pipelines: %s generation config: %w", repo.ID, err)
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setF := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.MaxNewTokens, gc.MaxNewTokens)
	set(&p.MinNewTokens, gc.MinNewTokens)
	set(&p.TopK, gc.TopK)
	setF(&p.Temperature, gc.Temperature)
	setF(&p.TopP, gc.TopP)
	setF(&p.RepetitionPenalty, gc.RepetitionPenalty)
	if gc.DoSample != nil {
		p.DoSample = *gc.DoSample
	}
	return p, eos, nil
}

// decodeBudgetBytes is the KV-cache memory the decode loops may fill by default.
const decodeBudgetBytes = 1 << 30

// loadTextGeneration builds the text-generation pipeline on sessions (already open on
// graph): one decode loop per worker (sched.Config.Workers, default 1), loop i running on
// sessions[i % len(sessions)], requests going to the least busy loop.
func loadTextGeneration(ctx context.Context, repo *models.Repo, o LoadOptions, sessions []runtime.Session,
	closeSessions func(), tok *tokenize.Tokenizer, cfg models.Config, mi *Info, log *slog.Logger) (*Model, error) {
	defaults, eos, err := generationDefaults(repo)
	if err != nil {
		return nil, err
	}
	maxTotal := cfg.MaxPositions()
	if tcfg, err := repo.TokenizerConfig(); err == nil && maxTotal <= 0 && tcfg.ModelMaxLength > 0 && tcfg.ModelMaxLength < 1e9 {
		maxTotal = int(tcfg.ModelMaxLength)
	}
	if maxTotal <= 0 {
		maxTotal = 2048
	}
	heads, headDim := attentionShape(repo)
	loops := max(o.Sched.Workers, 1)
	dcfg := o.Decode
	if dcfg.MaxConcurrentRequests <= 0 {
		dcfg.MaxConcurrentRequests = o.Sched.MaxConcurrentRequests
	}
	if dcfg.MaxConcurrentRequests > 0 {
		dcfg.MaxConcurrentRequests = (dcfg.MaxConcurrentRequests + loops - 1) / loops
	}
	var decs []*textgen.Decoder
	for i := 0; i < loops; i++ {
		d, err := textgen.NewDecoder(sessions[i%len(sessions)], heads, headDim)
		if err != nil {
			return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
		}
		decs = append(decs, d)
	}
	if dcfg.MaxBatchTokens <= 0 {
		perPos := decs[0].BytesPerPosition()
		dcfg.MaxBatchTokens = maxTotal
		if perPos > 0 {
			dcfg.MaxBatchTokens = min(max(decodeBudgetBytes/perPos/loops, maxTotal), 1<<20)
		}
	}
	var ls []*sched.DecodeLoop
	closeLoops := func(ctx context.Context) error {
		var first error
		for _, l := range ls {
			if err := l.Close(ctx); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, d := range decs {
		l, err := sched.NewDecodeLoop(d, dcfg)
		if err != nil {
			closeLoops(ctx)
			return nil, err
		}
		ls = append(ls, l)
	}
	gen, err := NewTextGeneration(TextGenerationConfig{Tokenizer: tok, Loops: ls, Defaults: defaults, EOS: eos, MaxTotalTokens: maxTotal})
	if err != nil {
		closeLoops(ctx)
		return nil, err
	}
	mi.MaxInputLength = maxTotal - 1
	mi.MaxBatchTokens, mi.MaxBatchSize = dcfg.MaxBatchTokens, ls[0].Config().MaxBatchSize
	mi.MaxConcurrentRequests = ls[0].Config().MaxConcurrentRequests * loops
	m := NewModel(*mi, func(ctx context.Context) error {
		err := closeLoops(ctx)
		closeSessions()
		return err
	})
	m.Generator = gen
	m.Tokenizer = NewTextTokenizer(tok)
	warm := defaults
	warm.MaxNewTokens, warm.DoSample, warm.NumReturnSequences = 2, false, 1
	if _, _, err := gen.Generate(ctx, "Infergo warm-up", warm, nil); err != nil {
		m.Close(ctx)
		return nil, fmt.Errorf("pipelines: warm up %s: %w", repo.ID, err)
	}
	log.Info("text generation ready", "model", repo.ID, "layout", decs[0].Layout().String(), "loops", loops,
		"max_total_tokens", maxTotal, "kv_budget_positions", dcfg.MaxBatchTokens, "eos", eos)
	return m, nil
}

// attentionShape reads the number of attention heads and the head size from config.json
// (GPT-2 and BERT-style names), for graphs whose past tensors leave them symbolic; zeros when
// unknown.
func attentionShape(repo *models.Repo) (heads, headDim int) {
	var c struct {
		NHead    int `json:"n_head"`
		Heads    int `json:"num_attention_heads"`
		KVHeads  int `json:"num_key_value_heads"`
		NEmbd    int `json:"n_embd"`
		Hidden   int `json:"hidden_size"`
		HeadSize int `json:"head_dim"`
	}
	if !repo.Has("config.json") || repo.ReadJSON("config.json", &c) != nil {
		return 0, 0
	}
	heads = max(c.NHead, c.Heads)
	hidden := max(c.NEmbd, c.Hidden)
	if heads > 0 && hidden > 0 {
		headDim = hidden / heads
	}
	if c.HeadSize > 0 {
		headDim = c.HeadSize
	}
	if c.KVHeads > 0 {
		heads = c.KVHeads // the cache holds key/value heads
	}
	return heads, headDim
}
