// Package pipelines turns requests into model work and model outputs into answers. Each task
// is a preprocess step (validate, tokenize), a trip through the batching scheduler
// (runtime/sched), and a postprocess step (pooling, softmax, decoding). Pipelines never call a
// session directly and know nothing of HTTP or gRPC: transports call the interfaces below.
package pipelines

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/infergo/infergo/pipelines/asr/audio"
)

// Task names, as Hugging Face pipeline tags.
const (
	TaskFeatureExtraction   = "feature-extraction"
	TaskSentenceSimilarity  = "sentence-similarity"
	TaskTextClassification  = "text-classification"
	TaskTokenClassification = "token-classification"
	TaskTextGeneration      = "text-generation"
	TaskSpeechRecognition   = "automatic-speech-recognition"
)

// ValidationError reports input a pipeline cannot accept (empty input, too many inputs, too
// long, a bad parameter). Transports answer it with HTTP 400/422 and gRPC InvalidArgument.
type ValidationError struct {
	// Field names the offending input or parameter, when there is one.
	Field string
	Msg   string
}

func (e *ValidationError) Error() string { return e.Msg }

// Invalidf returns a *ValidationError.
func Invalidf(field, format string, args ...any) error {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrEmpty is wrapped by validation errors about empty inputs (TEI answers these with 400
// "Empty" rather than 422).
var ErrEmpty = errors.New("empty input")

// EmptyError returns a *ValidationError that also matches ErrEmpty.
func EmptyError(field, msg string) error {
	return &emptyError{ValidationError{Field: field, Msg: msg}}
}

type emptyError struct{ ValidationError }

func (e *emptyError) Unwrap() []error { return []error{&e.ValidationError, ErrEmpty} }

// Stats reports what one pipeline call cost; transports turn it into x-* headers and metrics.
type Stats struct {
	Inputs     int // texts (or audio clips) processed
	Characters int // Unicode code points across all input strings
	Tokens     int // tokens sent to the model, special tokens included
	Tokenize   time.Duration
	Queue      time.Duration // longest wait of any of the call's sequences
	Inference  time.Duration // longest batch the call waited for
}

// Direction is the side truncation cuts from.
type Direction uint8

// Truncation directions.
const (
	TruncateRight Direction = iota
	TruncateLeft
)

// EmbedOptions tune one embedding call. The zero value means the model's defaults.
type EmbedOptions struct {
	// Normalize overrides the model's Normalize module (nil: the model decides).
	Normalize *bool
	// Truncate cuts inputs longer than the model's maximum; when false such inputs are a
	// ValidationError.
	Truncate bool
	// TruncationDirection picks which end Truncate cuts.
	TruncationDirection Direction
	// Dimensions keeps only the first n values of each embedding (Matryoshka); 0 keeps all.
	// Normalisation, if any, happens after the cut.
	Dimensions int
}

// Embedder computes sentence embeddings and similarities (feature-extraction and
// sentence-similarity). Implementations are safe for concurrent use.
type Embedder interface {
	// Embed returns one pooled vector per text, in order.
	Embed(ctx context.Context, texts []string, o EmbedOptions) ([][]float32, Stats, error)
	// EmbedTokens returns token-level vectors per text ([tokens][hidden]), special tokens
	// included, as transformers' feature-extraction pipeline does for plain models.
	EmbedTokens(ctx context.Context, texts []string, o EmbedOptions) ([][][]float32, Stats, error)
	// Similarity returns the cosine similarity between source and each sentence.
	Similarity(ctx context.Context, source string, sentences []string, o EmbedOptions) ([]float32, Stats, error)
}

// TimestampMode selects the timestamps a transcription returns.
type TimestampMode string

// Timestamp modes, as transformers' return_timestamps: segments (Whisper's timestamp
// tokens, `true`), words or characters (CTC models).
const (
	TimestampsNone    TimestampMode = ""
	TimestampsSegment TimestampMode = "segment"
	TimestampsWord    TimestampMode = "word"
	TimestampsChar    TimestampMode = "char"
)

// TranscribeOptions tune one speech recognition call. The zero value uses the model's
// defaults: no timestamps, detected language (Whisper), transcription, max_length tokens.
type TranscribeOptions struct {
	Timestamps TimestampMode
	// Language ("en", "english", "<|en|>") and Task ("transcribe", "translate") set Whisper's
	// prompt.
	Language, Task string
	// MaxNewTokens bounds the tokens generated per 30 s window (0: the model's max_length).
	MaxNewTokens int
	// ChunkLength and StrideLength (seconds) override long-audio windowing (0: 30 s windows
	// with 5 s strides when the audio is longer than one Whisper window).
	ChunkLength, StrideLength float64
}

// TranscriptChunk is a timed piece of a transcript; Start or End is nil where the model gave
// no timestamp.
type TranscriptChunk struct {
	Text       string
	Start, End *float64
}

// Transcript is a speech recognition result. Chunks is set only when timestamps were asked.
type Transcript struct {
	Text   string
	Chunks []TranscriptChunk
}

// ErrMalformedAudio is wrapped by DecodeAudio errors for input that is not decodable audio;
// its text is the api-inference-community message.
var ErrMalformedAudio = audio.ErrMalformed

// SpeechRecognizer serves automatic-speech-recognition. Implementations are safe for
// concurrent use.
type SpeechRecognizer interface {
	// SamplingRate is the rate the model expects (preprocessor_config.json).
	SamplingRate() int
	// DecodeAudio turns an encoded audio file into mono samples at SamplingRate, as
	// `ffmpeg -i pipe:0 -ac 1 -ar <rate> -f f32le` would; bad input wraps ErrMalformedAudio.
	DecodeAudio(ctx context.Context, data []byte) ([]float32, error)
	// Transcribe turns samples from DecodeAudio into text.
	Transcribe(ctx context.Context, samples []float32, o TranscribeOptions) (Transcript, Stats, error)
}

// Aggregation is a token-classification aggregation strategy (transformers'
// AggregationStrategy): how token predictions become entities.
type Aggregation string

// Aggregation strategies.
const (
	// AggregateNone reports every token with its own label (B-/I- prefixes kept).
	AggregateNone Aggregation = "none"
	// AggregateSimple groups consecutive tokens of the same entity type.
	AggregateSimple Aggregation = "simple"
	// AggregateFirst, AggregateAverage and AggregateMax first give every word one label (that
	// of its first token, of its averaged scores, or of its most confident token), then group
	// like AggregateSimple.
	AggregateFirst   Aggregation = "first"
	AggregateAverage Aggregation = "average"
	AggregateMax     Aggregation = "max"
)

// TokenClassifyOptions tune one token-classification call. The zero value means: simple
// aggregation, ignore "O", the pipeline's default stride.
type TokenClassifyOptions struct {
	// Aggregation picks the strategy; "" is AggregateSimple.
	Aggregation Aggregation
	// IgnoreLabels drops entities with these labels (group labels after aggregation); nil
	// means ["O"], an empty non-nil slice keeps every label.
	IgnoreLabels []string
	// Stride is how many tokens consecutive windows share when a text is longer than the
	// model's maximum length; nil takes the pipeline's default.
	Stride *int
}

// Entity is one classified token (AggregateNone) or one group of tokens.
type Entity struct {
	// Label is the predicted label: transformers' "entity" for AggregateNone (e.g. "B-PER"),
	// "entity_group" otherwise (e.g. "PER").
	Label string
	// Score is the probability of Label (averaged over the group), in float32 like numpy.
	Score float32
	// Index is the token's position in the tokenized input, special tokens included
	// (AggregateNone only; -1 otherwise). For inputs split into windows it counts from the
	// start of the whole text, as if the model had no length limit.
	Index int
	// Word is the text transformers reconstructs by decoding the tokens (lower-cased for
	// uncased tokenizers); Start and End are character (code point) offsets into the input.
	Word       string
	Start, End int
}

// TokenClassifier serves token-classification (NER). Implementations are safe for concurrent
// use.
type TokenClassifier interface {
	// ClassifyTokens returns the entities of each text, in order.
	ClassifyTokens(ctx context.Context, texts []string, o TokenClassifyOptions) ([][]Entity, Stats, error)
}

// ClassificationFunction maps logits to scores (transformers' function_to_apply).
type ClassificationFunction string

// Classification functions. FunctionDefault follows the model's config as transformers does:
// none for regression, sigmoid for multi-label or single-logit models, softmax otherwise.
const (
	FunctionDefault ClassificationFunction = ""
	FunctionSoftmax ClassificationFunction = "softmax"
	FunctionSigmoid ClassificationFunction = "sigmoid"
	FunctionNone    ClassificationFunction = "none"
)

// TextClassifyOptions tune one text-classification call.
type TextClassifyOptions struct {
	Function ClassificationFunction
	// TopK keeps the k best labels; 0 keeps all. Labels are sorted by descending score.
	TopK int
	// Truncate cuts inputs longer than the model's maximum; when false such inputs are a
	// ValidationError. TruncationDirection picks which end is cut.
	Truncate            bool
	TruncationDirection Direction
}

// TextInput is one text, or a pair of texts encoded with the tokenizer's pair template.
type TextInput struct {
	Text, Pair string
	HasPair    bool
}

// LabelScore is one label with its score.
type LabelScore struct {
	Label string
	Score float32
}

// TextClassifier serves text-classification (sequence classification, pairs included).
// Implementations are safe for concurrent use.
type TextClassifier interface {
	// Classify returns each input's labels sorted by descending score.
	Classify(ctx context.Context, inputs []TextInput, o TextClassifyOptions) ([][]LabelScore, Stats, error)
}

// Token is one token of a tokenized text, as TEI's /tokenize reports it.
type Token struct {
	ID      int32
	Text    string
	Special bool
	// Start and Stop are byte offsets into the input; nil for special tokens.
	Start, Stop *int
}

// TextTokenizer exposes the model's tokenizer (TEI /tokenize and /decode).
type TextTokenizer interface {
	Tokenize(ctx context.Context, texts []string, addSpecialTokens bool) ([][]Token, error)
	Decode(ctx context.Context, ids [][]int32, skipSpecialTokens bool) ([]string, error)
}

// GenerateParams tune one text-generation call, with transformers' generate() names and
// meanings. Start from TextGenerator.GenerateDefaults (the model's generation_config.json)
// and override what the request sets.
type GenerateParams struct {
	// MaxNewTokens bounds the generated tokens (≥ 1; 0 with MaxLength set).
	MaxNewTokens int
	// MinNewTokens forbids end-of-sequence before this many tokens.
	MinNewTokens int
	// MaxLength and MinLength, when set (> 0), count prompt and new tokens together, as
	// transformers' max_length/min_length; MaxLength applies only when MaxNewTokens is 0.
	MaxLength, MinLength int
	// DoSample samples instead of greedy search; Temperature (> 0), TopK (0: off), TopP
	// (1: off) and Seed only matter when it is set.
	DoSample    bool
	Temperature float64
	TopK        int
	TopP        float64
	// RepetitionPenalty (> 0; 1: off) penalises tokens already in the prompt or output.
	RepetitionPenalty float64
	// Seed makes sampling reproducible; nil draws a random seed (reported in Generation).
	Seed *uint64
	// Stop ends a sequence once its text contains one of these strings.
	Stop []string
	// MaxTime bounds the generation time of a sequence (0: none).
	MaxTime time.Duration
	// NumReturnSequences is how many sequences to generate from the prompt (≥ 1).
	NumReturnSequences int
}

// Finish reasons of a Generation, as TGI names them.
const (
	FinishLength       = "length"
	FinishEOSToken     = "eos_token"
	FinishStopSequence = "stop_sequence"
)

// GeneratedToken is one generated token.
type GeneratedToken struct {
	ID int32
	// Text is what the token adds to the output: "" while it holds part of a character the
	// next token completes; a special token's own string.
	Text    string
	LogProb float32
	Special bool
}

// GenerateEvent reports one generated token while a generation runs.
type GenerateEvent struct {
	// Index is the sequence (0 ≤ Index < NumReturnSequences).
	Index int
	Token GeneratedToken
	// Safe is output text newly known not to be part of a stop sequence: streaming routes
	// that cut stop sequences from the text send this instead of Token.Text.
	Safe string
	// Last marks the sequence's final token (end of sequence, stop sequence or length), so
	// a stream can attach its summary to it. A sequence cut by MaxTime may end without one.
	Last bool
}

// Generation is one generated sequence.
type Generation struct {
	// Text is the generated text, special tokens skipped, without the prompt; it includes
	// the stop sequence that ended it, if any (StopIndex says where it starts).
	Text      string
	Tokens    []GeneratedToken
	StopIndex int // byte offset of the matched stop sequence in Text, -1 if none
	// FinishReason is FinishLength, FinishEOSToken or FinishStopSequence.
	FinishReason string
	// Seed is the seed sampling used (nil for greedy search).
	Seed *uint64
}

// TextGenerator generates text (text-generation). Implementations are safe for concurrent
// use; concurrent calls share decoder steps.
type TextGenerator interface {
	// GenerateDefaults returns the model's default parameters.
	GenerateDefaults() GenerateParams
	// Generate continues prompt. emit, if not nil, is called on the caller's goroutine for
	// every token as it is generated (sequences in order when NumReturnSequences > 1); an
	// error from it stops the generation and is returned. Stats.Tokens counts the prompt's
	// tokens, Stats.Queue the time to the first token, Stats.Inference the rest.
	Generate(ctx context.Context, prompt string, p GenerateParams, emit func(GenerateEvent) error) ([]Generation, Stats, error)
}

// Info describes a loaded model for /info and logs.
type Info struct {
	ModelID  string // repo id or local directory
	Revision string // commit hash when known
	Task     string
	// Dimensions is the embedding size (feature-extraction, sentence-similarity).
	Dimensions int
	// MaxInputLength is the longest input in tokens, special tokens included.
	MaxInputLength int
	// Pooling is "mean", "cls", "max", "lasttoken" for sentence-transformers models, or ""
	// for token-level feature extraction.
	Pooling string
	// Normalize reports whether embeddings are L2-normalised by default.
	Normalize bool
	// Labels lists class labels in id order (classification tasks).
	Labels []string
	// MaxBatchTokens, MaxBatchSize, MaxConcurrentRequests and MaxClientBatchSize are the
	// scheduler and request limits in force.
	MaxBatchTokens        int
	MaxBatchSize          int
	MaxConcurrentRequests int
	MaxClientBatchSize    int
	// Device is where the model runs ("cpu", "cuda:0").
	Device string
}

// Model is one loaded model ready to serve. Interfaces for tasks the model does not serve are
// nil. Close releases the scheduler and sessions after in-flight work ends.
type Model struct {
	Info      Info
	Embedder  Embedder
	Tokenizer TextTokenizer
	// SpeechRecognizer serves automatic-speech-recognition models.
	SpeechRecognizer SpeechRecognizer
	// Generator serves text-generation.
	Generator TextGenerator
	// TokenClassifier serves token-classification models, TextClassifier
	// text-classification models.
	TokenClassifier TokenClassifier
	TextClassifier  TextClassifier

	closeOnce sync.Once
	close     func(ctx context.Context) error
	closeErr  error
}

// NewModel assembles a Model; close (may be nil) runs once on Close.
func NewModel(info Info, close func(ctx context.Context) error) *Model {
	return &Model{Info: info, close: close}
}

// Close drains in-flight work and releases the model's resources. Only the first call does
// the work; later and concurrent calls return its result.
func (m *Model) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		if m.close != nil {
			m.closeErr = m.close(ctx)
		}
	})
	return m.closeErr
}
