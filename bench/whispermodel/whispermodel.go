// Package whispermodel writes a Whisper-shaped model repo with random weights for speech
// recognition benchmarks: encoder_model.onnx, decoder_model.onnx and
// decoder_with_past_model.onnx with optimum's input and output names, built operator by
// operator (internal/onnxedit) in the architecture of openai/whisper-* (two convolutions
// and sinusoid-free learned positions, pre-norm attention blocks, GELU MLPs, tied output
// embedding), plus configs and a tokenizer.json with Whisper's special-token layout
// (<|startoftranscript|> 50258, languages, tasks, <|notimestamps|> 50363 and the 1,501
// timestamp tokens from 50364). Timing depends only on the shape, so the outputs are
// meaningless but the compute is that of the real model.
package whispermodel

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	ox "github.com/infergo/infergo/internal/onnxedit"
)

// Shape is a Whisper architecture.
type Shape struct {
	Name                          string
	DModel, Heads, FFN            int
	EncoderLayers, DecoderLayers  int
	Vocab, Mels                   int
	SourcePositions, TargetPosits int
}

// Tiny is openai/whisper-tiny's shape (39 M parameters).
var Tiny = Shape{Name: "whisper-tiny-shaped", DModel: 384, Heads: 6, FFN: 1536, EncoderLayers: 4, DecoderLayers: 4,
	Vocab: 51865, Mels: 80, SourcePositions: 1500, TargetPosits: 448}

// Base is openai/whisper-base's shape (74 M parameters).
var Base = Shape{Name: "whisper-base-shaped", DModel: 512, Heads: 8, FFN: 2048, EncoderLayers: 6, DecoderLayers: 6,
	Vocab: 51865, Mels: 80, SourcePositions: 1500, TargetPosits: 448}

// Token ids of Whisper's multilingual vocabulary.
const (
	EOT          = 50257
	SOT          = 50258
	firstLang    = 50259
	Translate    = 50358
	Transcribe   = 50359
	NoTimestamps = 50363
	firstTS      = 50364
)

// languages are Whisper's language codes in token order.
var languages = []string{"en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar",
	"sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
	"hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk",
	"br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
	"af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa",
	"lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su"}

// Write builds the repo for s in dir (from the repository at root, whose GPT-2 tokenizer
// provides the byte-level BPE) unless dir already holds it, and returns dir.
func Write(root, dir string, s Shape) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "onnx", "decoder_with_past_model.onnx")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		return "", fmt.Errorf("whispermodel: %w", err)
	}
	files := map[string][]byte{
		"onnx/encoder_model.onnx":           encoder(s),
		"onnx/decoder_model.onnx":           decoder(s, false),
		"onnx/decoder_with_past_model.onnx": decoder(s, true),
	}
	tok, err := tokenizer(root)
	if err != nil {
		return "", err
	}
	files["tokenizer.json"] = tok
	files["tokenizer_config.json"] = []byte(`{"clean_up_tokenization_spaces": true, "model_max_length": 448}` + "\n")
	files["preprocessor_config.json"] = mustJSON(map[string]any{"feature_extractor_type": "WhisperFeatureExtractor",
		"feature_size": s.Mels, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400, "chunk_length": 30,
		"n_samples": 480000, "nb_max_frames": 3000, "padding_value": 0.0})
	files["config.json"] = mustJSON(map[string]any{"model_type": "whisper", "architectures": []string{"WhisperForConditionalGeneration"},
		"d_model": s.DModel, "decoder_attention_heads": s.Heads, "encoder_attention_heads": s.Heads,
		"decoder_layers": s.DecoderLayers, "encoder_layers": s.EncoderLayers, "vocab_size": s.Vocab,
		"num_mel_bins": s.Mels, "max_source_positions": s.SourcePositions, "max_target_positions": s.TargetPosits,
		"decoder_start_token_id": SOT, "eos_token_id": EOT, "pad_token_id": EOT})
	langToID := map[string]int{}
	for i, l := range languages {
		langToID["<|"+l+"|>"] = firstLang + i
	}
	files["generation_config.json"] = mustJSON(map[string]any{"decoder_start_token_id": SOT, "eos_token_id": EOT,
		"pad_token_id": EOT, "max_length": s.TargetPosits, "lang_to_id": langToID,
		"task_to_id":             map[string]int{"translate": Translate, "transcribe": Transcribe},
		"no_timestamps_token_id": NoTimestamps, "max_initial_timestamp_index": 50, "is_multilingual": true,
		"suppress_tokens":       []int{1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 359, 503, 522, 542, 873, 893, 902, 918, 922, 931, 1350},
		"begin_suppress_tokens": []int{220, EOT}})
	for name, b := range files {
		if err := writeAtomic(filepath.Join(dir, filepath.FromSlash(name)), b); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("whispermodel: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("whispermodel: %w", err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// tokenizer is the real GPT-2 byte-level BPE (50,257 tokens) with Whisper's special tokens
// appended at Whisper's ids; the end of text is named <|eot|> because GPT-2 already has an
// <|endoftext|> (50256).
func tokenizer(root string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, "testdata", "fixtures", "real-tokenizers", "gpt2", "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("whispermodel: %w", err)
	}
	var t map[string]any
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("whispermodel: gpt2 tokenizer.json: %w", err)
	}
	added, _ := t["added_tokens"].([]any)
	add := func(id int, content string) {
		added = append(added, map[string]any{"id": id, "content": content, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	add(EOT, "<|eot|>")
	add(SOT, "<|startoftranscript|>")
	for i, l := range languages {
		add(firstLang+i, "<|"+l+"|>")
	}
	add(Translate, "<|translate|>")
	add(Transcribe, "<|transcribe|>")
	add(50360, "<|startoflm|>")
	add(50361, "<|startofprev|>")
	add(50362, "<|nospeech|>")
	add(NoTimestamps, "<|notimestamps|>")
	for i := 0; i <= 1500; i++ {
		// Timestamp tokens are not special in Whisper's tokenizer (decode keeps them).
		added = append(added, map[string]any{"id": firstTS + i, "content": fmt.Sprintf("<|%.2f|>", float64(i)*0.02),
			"single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false})
	}
	t["added_tokens"] = added
	return json.Marshal(t)
}

// graph helpers ---------------------------------------------------------------------------

type gb struct {
	*ox.Builder
	s      Shape
	consts map[string]string
	values map[string][]float32 // random weights by name
}

func newGB(s Shape) *gb {
	return &gb{Builder: &ox.Builder{}, s: s, consts: map[string]string{}, values: map[string][]float32{}}
}

// weight adds a random normal (std 0.02) initializer; the values depend only on its name,
// so the two decoder graphs share their weights exactly.
func (g *gb) weight(name string, dims ...int64) string {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(h.Sum64(), 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 0.02)
	}
	g.values[name] = v
	return g.Floats(name, dims, v)
}

// transposed adds the [cols, rows] transpose of the random initializer src [rows, cols].
func (g *gb) transposed(src, name string, rows, cols int64) string {
	v := g.values[src]
	t := make([]float32, len(v))
	for r := int64(0); r < rows; r++ {
		for c := int64(0); c < cols; c++ {
			t[c*rows+r] = v[r*cols+c]
		}
	}
	return g.Floats(name, []int64{cols, rows}, t)
}

func (g *gb) fill(name string, x float32, dims ...int64) string {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = x
	}
	return g.Floats(name, dims, v)
}

func (g *gb) scalar(x float32) string {
	key := "f" + strconv.FormatFloat(float64(x), 'g', -1, 32)
	if n, ok := g.consts[key]; ok {
		return n
	}
	n := g.Floats("const_"+key, nil, []float32{x})
	g.consts[key] = n
	return n
}

func (g *gb) ints(v ...int64) string {
	key := fmt.Sprint("i", v)
	if n, ok := g.consts[key]; ok {
		return n
	}
	n := g.Int64s(fmt.Sprintf("const_i%d", len(g.consts)), []int64{int64(len(v))}, v)
	g.consts[key] = n
	return n
}

func (g *gb) intScalar(x int64) string {
	key := fmt.Sprint("s", x)
	if n, ok := g.consts[key]; ok {
		return n
	}
	n := g.Int64s(fmt.Sprintf("const_s%d", len(g.consts)), nil, []int64{x})
	g.consts[key] = n
	return n
}

func (g *gb) linear(x, name string, in, out int, bias bool) string {
	y := g.Op("MatMul", []string{x, g.weight(name+".weight", int64(in), int64(out))})
	if bias {
		y = g.Op("Add", []string{y, g.fill(name+".bias", 0, int64(out))})
	}
	return y
}

func (g *gb) layerNorm(x, name string) string {
	d := int64(g.s.DModel)
	return g.Op("LayerNormalization", []string{x, g.fill(name+".weight", 1, d), g.fill(name+".bias", 0, d)},
		ox.I("axis", -1), ox.F("epsilon", 1e-5))
}

func (g *gb) gelu(x string) string {
	e := g.Op("Erf", []string{g.Op("Div", []string{x, g.scalar(float32(math.Sqrt2))})})
	return g.Op("Mul", []string{g.Op("Mul", []string{x, g.scalar(0.5)}), g.Op("Add", []string{e, g.scalar(1)})})
}

// heads turns [B, T, d] into [B, H, T, d/H].
func (g *gb) heads(x string) string {
	r := g.Op("Reshape", []string{x, g.ints(0, 0, int64(g.s.Heads), int64(g.s.DModel/g.s.Heads))})
	return g.Op("Transpose", []string{r}, ox.Is("perm", 0, 2, 1, 3))
}

func (g *gb) mergeHeads(x string) string {
	t := g.Op("Transpose", []string{x}, ox.Is("perm", 0, 2, 1, 3))
	return g.Op("Reshape", []string{t, g.ints(0, 0, int64(g.s.DModel))})
}

// attend is softmax(q·kᵀ/√d + mask)·v over [B, H, *, d/H] tensors.
func (g *gb) attend(q, k, v, mask string) string {
	s := g.Op("MatMul", []string{q, g.Op("Transpose", []string{k}, ox.Is("perm", 0, 1, 3, 2))})
	s = g.Op("Mul", []string{s, g.scalar(float32(1 / math.Sqrt(float64(g.s.DModel/g.s.Heads))))})
	if mask != "" {
		s = g.Op("Add", []string{s, mask})
	}
	return g.Op("MatMul", []string{g.Op("Softmax", []string{s}, ox.I("axis", -1)), v})
}

func (g *gb) mlp(x, name string) string {
	d, f := g.s.DModel, g.s.FFN
	h := g.gelu(g.linear(g.layerNorm(x, name+".final_layer_norm"), name+".fc1", d, f, true))
	return g.Op("Add", []string{x, g.linear(h, name+".fc2", f, d, true)})
}

// encoder: input_features [B, mels, 3000] → last_hidden_state [B, 1500, d].
func encoder(s Shape) []byte {
	g := newGB(s)
	d := int64(s.DModel)
	x := g.Input("input_features", ox.Float, ox.P("batch_size"), ox.D(int64(s.Mels)), ox.D(3000))
	x = g.gelu(g.Op("Conv", []string{x, g.weight("encoder.conv1.weight", d, int64(s.Mels), 3), g.fill("encoder.conv1.bias", 0, d)},
		ox.Is("pads", 1, 1), ox.Is("kernel_shape", 3)))
	x = g.gelu(g.Op("Conv", []string{x, g.weight("encoder.conv2.weight", d, d, 3), g.fill("encoder.conv2.bias", 0, d)},
		ox.Is("pads", 1, 1), ox.Is("strides", 2), ox.Is("kernel_shape", 3)))
	x = g.Op("Transpose", []string{x}, ox.Is("perm", 0, 2, 1))
	x = g.Op("Add", []string{x, g.weight("encoder.embed_positions.weight", int64(s.SourcePositions), d)})
	for l := 0; l < s.EncoderLayers; l++ {
		p := fmt.Sprintf("encoder.layers.%d", l)
		n := g.layerNorm(x, p+".self_attn_layer_norm")
		q := g.heads(g.linear(n, p+".self_attn.q_proj", s.DModel, s.DModel, true))
		k := g.heads(g.linear(n, p+".self_attn.k_proj", s.DModel, s.DModel, false))
		v := g.heads(g.linear(n, p+".self_attn.v_proj", s.DModel, s.DModel, true))
		a := g.linear(g.mergeHeads(g.attend(q, k, v, "")), p+".self_attn.out_proj", s.DModel, s.DModel, true)
		x = g.mlp(g.Op("Add", []string{x, a}), p)
	}
	g.Node("LayerNormalization", []string{x, g.fill("encoder.layer_norm.weight", 1, d), g.fill("encoder.layer_norm.bias", 0, d)},
		[]string{"last_hidden_state"}, ox.I("axis", -1), ox.F("epsilon", 1e-5))
	g.Output("last_hidden_state", ox.Float, ox.P("batch_size"), ox.D(int64(s.SourcePositions)), ox.D(d))
	return g.Model("whisper_encoder")
}

// decoder: the prompt graph (decoder_model: input_ids, encoder_hidden_states) or the cached
// one (decoder_with_past_model: input_ids and past_key_values.*), in optimum's names.
func decoder(s Shape, withPast bool) []byte {
	g := newGB(s)
	d, H, dh := int64(s.DModel), int64(s.Heads), int64(s.DModel/s.Heads)
	ids := g.Input("input_ids", ox.Int64, ox.P("batch_size"), ox.P("decoder_sequence_length"))
	var enc string
	if !withPast {
		enc = g.Input("encoder_hidden_states", ox.Float, ox.P("batch_size"), ox.P("encoder_sequence_length"), ox.D(d))
	}
	pastName := func(l int, kind, kv string) string {
		return fmt.Sprintf("past_key_values.%d.%s.%s", l, kind, kv)
	}
	if withPast {
		for l := 0; l < s.DecoderLayers; l++ {
			for _, kind := range []string{"decoder", "encoder"} {
				dim := "past_decoder_sequence_length"
				if kind == "encoder" {
					dim = "encoder_sequence_length_out"
				}
				for _, kv := range []string{"key", "value"} {
					g.Input(pastName(l, kind, kv), ox.Float, ox.P("batch_size"), ox.D(H), ox.P(dim), ox.D(dh))
				}
			}
		}
	}
	embed := g.weight("decoder.embed_tokens.weight", int64(s.Vocab), d)
	x := g.Op("Gather", []string{embed, ids})
	S := g.Op("Gather", []string{g.Op("Shape", []string{ids}), g.intScalar(1)})
	start := g.intScalar(0)
	if withPast {
		start = g.Op("Gather", []string{g.Op("Shape", []string{pastName(0, "decoder", "key")}), g.intScalar(2)})
	}
	pos := g.Op("Range", []string{start, g.Op("Add", []string{start, S}), g.intScalar(1)})
	x = g.Op("Add", []string{x, g.Op("Gather", []string{g.weight("decoder.embed_positions.weight", int64(s.TargetPosits), d), pos})})
	mask := ""
	if !withPast {
		// Causal mask for the prompt: −1e9 above the diagonal.
		S1 := g.Op("Reshape", []string{S, g.ints(1)})
		full := g.Op("Expand", []string{g.scalar(-1e9), g.Op("Concat", []string{S1, S1}, ox.I("axis", 0))})
		mask = g.Op("Trilu", []string{full, g.intScalar(1)}, ox.I("upper", 1))
	}
	presentDims := func(kind string) []ox.Dim {
		if kind == "encoder" {
			return []ox.Dim{ox.P("batch_size"), ox.D(H), ox.P("encoder_sequence_length_out"), ox.D(dh)}
		}
		return []ox.Dim{ox.P("batch_size"), ox.D(H), ox.P("past_decoder_sequence_length + 1"), ox.D(dh)}
	}
	for l := 0; l < s.DecoderLayers; l++ {
		p := fmt.Sprintf("decoder.layers.%d", l)
		n := g.layerNorm(x, p+".self_attn_layer_norm")
		q := g.heads(g.linear(n, p+".self_attn.q_proj", s.DModel, s.DModel, true))
		k := g.heads(g.linear(n, p+".self_attn.k_proj", s.DModel, s.DModel, false))
		v := g.heads(g.linear(n, p+".self_attn.v_proj", s.DModel, s.DModel, true))
		if withPast {
			k = g.Op("Concat", []string{pastName(l, "decoder", "key"), k}, ox.I("axis", 2))
			v = g.Op("Concat", []string{pastName(l, "decoder", "value"), v}, ox.I("axis", 2))
		}
		for i, t := range []string{k, v} {
			out := fmt.Sprintf("present.%d.decoder.%s", l, []string{"key", "value"}[i])
			g.Node("Identity", []string{t}, []string{out})
			g.Output(out, ox.Float, presentDims("decoder")...)
		}
		a := g.linear(g.mergeHeads(g.attend(q, k, v, mask)), p+".self_attn.out_proj", s.DModel, s.DModel, true)
		x = g.Op("Add", []string{x, a})

		n = g.layerNorm(x, p+".encoder_attn_layer_norm")
		q = g.heads(g.linear(n, p+".encoder_attn.q_proj", s.DModel, s.DModel, true))
		var ck, cv string
		if withPast {
			ck, cv = pastName(l, "encoder", "key"), pastName(l, "encoder", "value")
		} else {
			ck = g.heads(g.linear(enc, p+".encoder_attn.k_proj", s.DModel, s.DModel, false))
			cv = g.heads(g.linear(enc, p+".encoder_attn.v_proj", s.DModel, s.DModel, true))
			for i, t := range []string{ck, cv} {
				out := fmt.Sprintf("present.%d.encoder.%s", l, []string{"key", "value"}[i])
				g.Node("Identity", []string{t}, []string{out})
				g.Output(out, ox.Float, presentDims("encoder")...)
			}
		}
		a = g.linear(g.mergeHeads(g.attend(q, ck, cv, "")), p+".encoder_attn.out_proj", s.DModel, s.DModel, true)
		x = g.mlp(g.Op("Add", []string{x, a}), p)
	}
	x = g.layerNorm(x, "decoder.layer_norm")
	// Tied output projection, logits = x · embedᵀ, stored transposed as exports fold it.
	g.Node("MatMul", []string{x, g.transposed(embed, "proj_out.weight", int64(s.Vocab), d)}, []string{"logits"})
	g.Output("logits", ox.Float, ox.P("batch_size"), ox.P("decoder_sequence_length"), ox.D(int64(s.Vocab)))
	if withPast {
		return g.Model("whisper_decoder_with_past")
	}
	return g.Model("whisper_decoder")
}
