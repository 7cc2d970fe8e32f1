package asr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/sched"
)

// CTCVocab is a Wav2Vec2CTCTokenizer: vocab.json and its tokenizer_config.json settings.
type CTCVocab struct {
	Tokens    []string // by id
	Pad       string   // the CTC blank
	Delimiter string   // word delimiter token ("|")
	Replace   string   // what the delimiter becomes in text (" ")
	CleanUp   bool
}

// CTCConfig configures NewCTC.
type CTCConfig struct {
	// Scheduler runs the graph (input_values [batch, samples] → logits [batch, frames, vocab]).
	Scheduler *sched.Scheduler
	Pre       PreprocessorConfig
	Model     ModelConfig
	Vocab     CTCVocab
}

// CTC transcribes with a connectionist-temporal-classification model (wav2vec2, HuBERT,
// WavLM): normalised samples through the encoder scheduler, greedy argmax per frame, repeats
// collapsed and blanks dropped, tokens joined with the word delimiter turned into spaces —
// what transformers' pipeline does for type "ctc".
type CTC struct {
	s         *sched.Scheduler
	out       int
	pre       PreprocessorConfig
	model     ModelConfig
	vocab     CTCVocab
	normalize bool
	ratio     int // input samples per logit frame
}

// NewCTC checks the graph.
func NewCTC(c CTCConfig) (*CTC, error) {
	info := c.Scheduler.Info()
	if info.Input("input_values") < 0 {
		return nil, errors.New("asr: the CTC graph has no input_values input")
	}
	out := info.Output("logits")
	if out < 0 {
		return nil, errors.New("asr: the CTC graph has no logits output")
	}
	if len(c.Vocab.Tokens) == 0 {
		return nil, errors.New("asr: empty CTC vocabulary")
	}
	normalize := true // Wav2Vec2FeatureExtractor's default
	if c.Pre.DoNormalize != nil {
		normalize = *c.Pre.DoNormalize
	}
	return &CTC{s: c.Scheduler, out: out, pre: c.Pre, model: c.Model, vocab: c.Vocab,
		normalize: normalize, ratio: c.Model.InputsToLogitsRatio()}, nil
}

// SamplingRate implements Recognizer.
func (c *CTC) SamplingRate() int { return c.pre.SamplingRate }

// Close implements Recognizer (the scheduler belongs to the caller).
func (c *CTC) Close(context.Context) error { return nil }

// autoChunkSeconds: CTC encoders attend over the whole input, so memory grows with the
// square of its length; audio longer than this is chunked (30 s windows, 5 s strides) even
// when the request did not ask for chunking.
const autoChunkSeconds = 60

// Transcribe implements Recognizer.
func (c *CTC) Transcribe(ctx context.Context, pcm []float32, o Options) (Result, error) {
	if o.Language != "" || o.Task != "" {
		return Result{}, invalidf("`language` and `task` are only available for Whisper models")
	}
	if o.Timestamps && !o.WordTimestamps && !o.CharTimestamps {
		return Result{}, invalidf("CTC can either predict character level timestamps, or word level timestamps. Set `return_timestamps='char'` or `return_timestamps='word'` as required.")
	}
	if len(pcm) == 0 {
		return Result{}, invalidf("empty audio")
	}
	sr := float64(c.pre.SamplingRate)
	chunk, stride := o.ChunkLength, o.StrideLength
	if chunk <= 0 && float64(len(pcm)) > autoChunkSeconds*sr {
		chunk = 30
	}
	wins := []window{{start: 0, end: len(pcm)}}
	if chunk > 0 {
		if stride <= 0 {
			stride = chunk / 6
		}
		align := float64(c.ratio)
		chunkLen := int(math.Round(chunk*sr/align) * align)
		strideLen := int(math.Round(stride*sr/align) * align)
		if chunkLen < 2*strideLen || chunkLen-2*strideLen <= 0 {
			return Result{}, invalidf("Chunk length must be superior to stride length")
		}
		wins = chunkWindows(len(pcm), chunkLen, strideLen, strideLen)
	}
	start := time.Now()
	seqs := make([]sched.Sequence, len(wins))
	for i, w := range wins {
		x := pcm[w.start:w.end]
		if c.normalize {
			x = NormalizeZeroMeanUnitVar(x)
		}
		seqs[i] = sched.Sequence{Features: map[string]runtime.Tensor{
			"input_values": runtime.NewTensor([]int64{int64(len(x))}, x),
		}}
	}
	res := Result{Windows: len(wins), Features: time.Since(start)}
	out, err := c.s.Submit(ctx, seqs)
	if err != nil {
		return Result{}, fmt.Errorf("asr: ctc: %w", err)
	}
	var ids []int32
	for i, r := range out {
		res.Queue, res.Inference = max(res.Queue, r.Queue), max(res.Inference, r.Inference)
		logits := r.Outputs[c.out]
		if len(logits.Shape) != 2 || logits.Float32s() == nil {
			return Result{}, fmt.Errorf("asr: ctc: logits %v, want float32 [frames, vocab]", logits)
		}
		frames, vocab := int(logits.Shape[0]), int(logits.Shape[1])
		// A row padded in a masked batch has frames for the padding: keep the sequence's own.
		if n, ok := c.model.logitFrames(wins[i].end - wins[i].start); ok && n < frames {
			frames = n
		}
		lo, hi := 0, frames
		if chunk > 0 {
			// rescale_stride: the stride in samples becomes a stride in frames.
			w := wins[i]
			total := int(math.Round(float64(w.end-w.start) / float64(c.ratio)))
			lo = int(math.Round(float64(w.left) / float64(w.end-w.start) * float64(total)))
			hi = min(frames, total-int(math.Round(float64(w.right)/float64(w.end-w.start)*float64(total))))
		}
		data := logits.Float32s()
		var win []int32
		for f := lo; f < hi; f++ {
			win = append(win, argmax(data[f*vocab:(f+1)*vocab]))
		}
		res.Sequences = append(res.Sequences, win)
		ids = append(ids, win...)
	}
	res.Tokens = len(ids)
	text, offsets := c.decode(ids)
	res.Text = text
	if o.Timestamps {
		if o.WordTimestamps {
			offsets = wordOffsets(offsets, c.vocab.Replace)
		}
		for _, off := range offsets {
			s := float64(off.start*c.ratio) / sr
			e := float64(off.end*c.ratio) / sr
			res.Chunks = append(res.Chunks, Chunk{Text: off.text, Start: &s, End: &e})
		}
	}
	return res, nil
}

// offset is a character or word with its span in logit frames.
type offset struct {
	text       string
	start, end int
}

// decode is Wav2Vec2CTCTokenizer.decode(ids, skip_special_tokens=False) as the CTC pipeline
// calls it: runs of one token collapse to one, blanks (pad) are dropped, the word delimiter
// becomes its replacement, and the text is stripped. It also returns the character offsets
// (output_char_offsets).
func (c *CTC) decode(ids []int32) (string, []offset) {
	var chars []offset
	for i := 0; i < len(ids); {
		j := i
		for j < len(ids) && ids[j] == ids[i] {
			j++
		}
		tok := ""
		if int(ids[i]) < len(c.vocab.Tokens) {
			tok = c.vocab.Tokens[ids[i]]
		}
		if tok != c.vocab.Pad {
			if tok == c.vocab.Delimiter {
				tok = c.vocab.Replace
			}
			chars = append(chars, offset{text: tok, start: i, end: j})
		}
		i = j
	}
	var sb strings.Builder
	for _, ch := range chars {
		sb.WriteString(ch.text)
	}
	text := strings.TrimSpace(sb.String())
	if c.vocab.CleanUp {
		text = cleanUpTokenization(text)
	}
	return text, chars
}

// wordOffsets groups character offsets into words separated by the delimiter character
// (Wav2Vec2CTCTokenizer._get_word_offsets).
func wordOffsets(chars []offset, delimiter string) []offset {
	var out []offset
	inWord := false
	var cur offset
	for _, ch := range chars {
		word := ch.text != delimiter
		switch {
		case word && inWord:
			cur.text += ch.text
			cur.end = ch.end
		case word:
			cur = ch
		case inWord:
			out = append(out, cur)
		}
		inWord = word
	}
	if inWord {
		out = append(out, cur)
	}
	return out
}
