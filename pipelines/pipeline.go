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
