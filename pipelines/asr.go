package pipelines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines/asr"
	"github.com/infergo/infergo/pipelines/asr/audio"
)

// isSpeechRepo reports whether Load should take the speech recognition path: the task says
// so, or, with no task given, the repo's card or config does (Whisper and CTC repos are
// recognised by model type, before any graph is opened).
func isSpeechRepo(repo *models.Repo, task string) bool {
	if task != "" {
		return task == TaskSpeechRecognition
	}
	t, err := repo.InferTask(nil)
	return err == nil && t == TaskSpeechRecognition
}

// loadSpeech loads a Whisper or CTC repo (pipelines/asr) and warms it up with one second of
// silence.
func loadSpeech(ctx context.Context, repo *models.Repo, o LoadOptions) (*Model, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	// Whisper's decode loop: the configured one, else the encoder scheduler's size and
	// admission limits (its default KV budget fits ~30 windows: 1,500 cross-attention
	// positions each).
	decode := o.Decode
	if decode.MaxBatchSize <= 0 {
		decode.MaxBatchSize = o.Sched.MaxBatchSize
	}
	if decode.MaxConcurrentRequests <= 0 {
		decode.MaxConcurrentRequests = o.Sched.MaxConcurrentRequests
	}
	r, err := asr.Load(ctx, repo, asr.LoadOptions{
		Opener: o.Opener, Runtime: o.Runtime, ONNXFile: o.ONNXFile, Sessions: o.Sessions,
		Sched: o.Sched, Decode: decode,
	})
	if err != nil {
		return nil, fmt.Errorf("pipelines: load %s: %w", repo.ID, err)
	}
	ff := o.FFmpeg
	if ff == "" {
		ff = audio.FindFFmpeg()
	}
	if ff == "" {
		log.Warn("ffmpeg not found: Opus, WebM, MP4 and other non-native audio formats will be rejected", "model", repo.ID)
	}
	device := o.Device
	if device == "" {
		device = "cpu"
	}
	cfg := o.Sched
	if cfg.MaxBatchSize <= 0 {
		cfg.MaxBatchSize = 128
	}
	if cfg.MaxConcurrentRequests <= 0 {
		cfg.MaxConcurrentRequests = 512
	}
	mi := Info{ModelID: repo.ID, Revision: repo.Commit, Task: TaskSpeechRecognition, Device: device,
		MaxClientBatchSize: o.MaxClientBatchSize}
	fillLimits(&mi, cfg)
	m := NewModel(mi, r.Close)
	sr := &SpeechRecognition{r: r, dec: &audio.Decoder{FFmpeg: ff}}
	m.SpeechRecognizer = sr
	if _, _, err := sr.Transcribe(ctx, make([]float32, r.SamplingRate()), TranscribeOptions{MaxNewTokens: 1}); err != nil {
		m.Close(ctx)
		return nil, fmt.Errorf("pipelines: warm up %s: %w", repo.ID, err)
	}
	log.Info("pipeline ready", "model", repo.ID, "task", TaskSpeechRecognition, "sampling_rate", r.SamplingRate(),
		"ffmpeg", ff != "", "device", device)
	return m, nil
}

// SpeechRecognition adapts an asr.Recognizer (Whisper or CTC) and an audio decoder to
// SpeechRecognizer.
type SpeechRecognition struct {
	r   asr.Recognizer
	dec *audio.Decoder
}

var _ SpeechRecognizer = (*SpeechRecognition)(nil)

// NewSpeechRecognition wraps r; dec decodes request bodies (nil: pure-Go formats only).
func NewSpeechRecognition(r asr.Recognizer, dec *audio.Decoder) *SpeechRecognition {
	if dec == nil {
		dec = &audio.Decoder{}
	}
	return &SpeechRecognition{r: r, dec: dec}
}

// SamplingRate implements SpeechRecognizer.
func (s *SpeechRecognition) SamplingRate() int { return s.r.SamplingRate() }

// DecodeAudio implements SpeechRecognizer.
func (s *SpeechRecognition) DecodeAudio(ctx context.Context, data []byte) ([]float32, error) {
	pcm, err := s.dec.Decode(ctx, data, s.r.SamplingRate())
	if errors.Is(err, audio.ErrTooLong) {
		return nil, Invalidf("inputs", "the audio is longer than the server accepts")
	}
	return pcm, err
}

// Transcribe implements SpeechRecognizer.
func (s *SpeechRecognition) Transcribe(ctx context.Context, samples []float32, o TranscribeOptions) (Transcript, Stats, error) {
	if len(samples) == 0 {
		return Transcript{}, Stats{}, EmptyError("inputs", "the audio has no samples")
	}
	ao := asr.Options{Language: o.Language, Task: o.Task, MaxNewTokens: o.MaxNewTokens,
		ChunkLength: o.ChunkLength, StrideLength: o.StrideLength}
	switch o.Timestamps {
	case TimestampsNone:
	case TimestampsSegment:
		ao.Timestamps = true
	case TimestampsWord:
		ao.Timestamps, ao.WordTimestamps = true, true
	case TimestampsChar:
		ao.Timestamps, ao.CharTimestamps = true, true
	default:
		return Transcript{}, Stats{}, Invalidf("return_timestamps", "unknown timestamp mode %q", o.Timestamps)
	}
	start := time.Now()
	res, err := s.r.Transcribe(ctx, samples, ao)
	stats := Stats{Inputs: 1, Tokens: res.Tokens, Tokenize: res.Features, Queue: res.Queue, Inference: time.Since(start)}
	if err != nil {
		var ie *asr.InvalidError
		if errors.As(err, &ie) {
			return Transcript{}, stats, &ValidationError{Msg: ie.Msg}
		}
		return Transcript{}, stats, err
	}
	t := Transcript{Text: res.Text}
	if o.Timestamps != TimestampsNone {
		t.Chunks = make([]TranscriptChunk, len(res.Chunks))
		for i, c := range res.Chunks {
			t.Chunks[i] = TranscriptChunk{Text: c.Text, Start: c.Start, End: c.End}
		}
	}
	return t, stats, nil
}
