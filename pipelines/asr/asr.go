// Package asr is the model side of automatic speech recognition: Whisper (log-mel features,
// encoder through the batching scheduler, greedy decoding with a KV cache on the step-wise
// decode loop, long-form chunking and merging, timestamps) and CTC models such as wav2vec2
// (normalised samples, logits, greedy collapse, vocabulary decode). Audio decoding lives in
// the audio sub-package; the pipelines package adapts this one to its task interfaces.
package asr

import (
	"fmt"
	"time"
)

// Options tune one transcription. The zero value transcribes with the model's defaults.
type Options struct {
	// Timestamps asks for segment timestamps (Whisper) or, with WordTimestamps, word
	// timestamps (CTC).
	Timestamps bool
	// WordTimestamps asks for word-level chunks (CTC "word"); CharTimestamps for
	// character-level ones (CTC "char").
	WordTimestamps, CharTimestamps bool
	// Language and Task select Whisper's prompt ("" = detected language, "transcribe").
	Language, Task string
	// MaxNewTokens bounds generated tokens per window (0: generation_config max_length).
	MaxNewTokens int
	// ChunkLength and StrideLength (seconds) override long-audio windowing (0: 30 s windows
	// with 5 s strides for audio longer than one window; CTC: no chunking).
	ChunkLength, StrideLength float64
}

// Result is a transcription.
type Result struct {
	Text string
	// Chunks holds the timed pieces when timestamps were requested.
	Chunks []Chunk
	// Windows is the number of windows (Whisper) or chunks (CTC) the audio was cut into.
	Windows int
	// Tokens is the number of tokens generated (Whisper) or logit frames (CTC).
	Tokens int
	// Sequences holds each window's token ids: Whisper's prompt plus generated tokens (as
	// generate returns them), or CTC's argmax ids per kept frame.
	Sequences [][]int32
	// Features, Queue, Inference and Decode time the stages: feature extraction, the
	// longest encoder queue wait and batch, and the decode loop.
	Features, Queue, Inference, Decode time.Duration
}

// InvalidError is bad input or parameters (HTTP 400).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}
