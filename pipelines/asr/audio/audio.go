// Package audio turns an encoded audio file (the raw body of an api-inference-community
// speech request) into mono float32 PCM at a model's sampling rate, with the semantics of
// `ffmpeg -i pipe:0 -ac 1 -ar <rate> -f f32le pipe:1` that the Python containers use.
//
// The container is sniffed from magic bytes, never from a name or Content-Type. WAV, FLAC,
// MP3 and Ogg Vorbis are decoded in pure Go (no process start, tens of milliseconds per
// file), mixed down to mono with ffmpeg's matrix and resampled with a windowed-sinc
// polyphase filter. Everything else (Opus, WebM/Matroska, MP4/M4A, AAC, AIFF, …) goes to an
// ffmpeg subprocess with bounded input, output and wall-clock time. Input nobody can decode
// is ErrMalformed, which transports answer with 400 {"error":"Malformed soundfile"}.
package audio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrMalformed reports bytes that are not decodable audio, or audio without samples. Its
// text is the api-inference-community message.
var ErrMalformed = errors.New("Malformed soundfile")

// ErrTooLong reports audio longer than Decoder.MaxDuration.
var ErrTooLong = errors.New("audio: too long")

// Format is a sniffed container or codec.
type Format uint8

// Formats Sniff recognises.
const (
	Unknown Format = iota
	WAV
	FLAC
	MP3
	OggVorbis
	OggOpus
	OggOther // Ogg FLAC, Speex, …
	Matroska // WebM, MKV
	MP4      // M4A, MOV, 3GP
	ADTS     // raw AAC
	AIFF
	CAF
)

var formatNames = [...]string{"unknown", "wav", "flac", "mp3", "ogg-vorbis", "ogg-opus", "ogg", "matroska", "mp4", "aac", "aiff", "caf"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// Native reports whether f is decoded in pure Go.
func (f Format) Native() bool { return f == WAV || f == FLAC || f == MP3 || f == OggVorbis }

// Decoder decodes audio files. The zero value decodes the native formats only; set FFmpeg to
// reach the rest. A Decoder is safe for concurrent use.
type Decoder struct {
	// FFmpeg is the ffmpeg executable for non-native formats ("" disables the fallback).
	FFmpeg string
	// MaxInputBytes bounds the encoded input (0: 64 MiB).
	MaxInputBytes int
	// MaxDuration bounds the decoded audio (0: 1 hour). Longer input is ErrTooLong.
	MaxDuration time.Duration
	// Timeout bounds one ffmpeg run (0: 60 s); the request's context applies as well.
	Timeout time.Duration
}

const (
	defaultMaxInput    = 64 << 20
	defaultMaxDuration = time.Hour
	defaultTimeout     = time.Minute
)

func (d *Decoder) maxInput() int {
	if d.MaxInputBytes > 0 {
		return d.MaxInputBytes
	}
	return defaultMaxInput
}

// maxSamples is how many samples at rate MaxDuration allows.
func (d *Decoder) maxSamples(rate int) int {
	dur := d.MaxDuration
	if dur <= 0 {
		dur = defaultMaxDuration
	}
	return int(math.Ceil(dur.Seconds() * float64(rate)))
}

// Decode returns data as mono float32 samples at rate Hz. Undecodable input, and input that
// decodes to no samples, is ErrMalformed (wrapped with the cause).
func (d *Decoder) Decode(ctx context.Context, data []byte, rate int) ([]float32, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("audio: sampling rate %d", rate)
	}
	if len(data) > d.maxInput() {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d-byte limit", ErrMalformed, len(data), d.maxInput())
	}
	f := Sniff(data)
	if f.Native() {
		pcm, err := d.decodeNative(f, data, rate)
		if err == nil || errors.Is(err, ErrTooLong) || d.FFmpeg == "" {
			return pcm, err
		}
		// A file our decoders reject (an exotic WAV encoding, a damaged stream) may still be
		// something ffmpeg reads, as upstream would.
		if pcm, ferr := d.ffmpeg(ctx, f, data, rate); ferr == nil {
			return pcm, nil
		}
		return nil, err
	}
	if d.FFmpeg == "" {
		return nil, fmt.Errorf("%w: %s needs ffmpeg, which is not configured", ErrMalformed, f)
	}
	return d.ffmpeg(ctx, f, data, rate)
}

// decodeNative decodes a native format, mixes it down and resamples it.
func (d *Decoder) decodeNative(f Format, data []byte, rate int) ([]float32, error) {
	var (
		c   clip
		err error
	)
	// The duration limit is checked on the source rate before resampling (and inside the
	// decoders, so a small file cannot expand into gigabytes first).
	limit := func(srcRate int) int { return d.maxSamples(srcRate) }
	switch f {
	case WAV:
		c, err = decodeWAV(data, limit)
	case FLAC:
		c, err = decodeFLAC(data, limit)
	case MP3:
		c, err = decodeMP3(data, limit)
	case OggVorbis:
		c, err = decodeVorbis(data, limit)
	default:
		return nil, fmt.Errorf("audio: %s is not native", f)
	}
	if err != nil {
		if errors.Is(err, ErrTooLong) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, f, err)
	}
	mono := c.mono()
	if len(mono) == 0 {
		return nil, fmt.Errorf("%w: %s: no samples", ErrMalformed, f)
	}
	return Resample(mono, c.rate, rate), nil
}

// clip is decoded audio: interleaved samples in [-1, 1].
type clip struct {
	rate     int
	channels int
	samples  []float32 // frames × channels, interleaved
}

// mono mixes a clip down to one channel the way ffmpeg's `-ac 1` does for float output:
// front stereo channels are summed with weight √½ each (swresample builds the matrix without
// normalising it for float formats), so a stereo file with identical channels comes out
// louder by √2 than either channel — exactly what upstream feeds the model. Layouts beyond
// stereo have no standard order in WAV/FLAC/Vorbis we could rely on, so they are averaged.
func (c clip) mono() []float32 {
	switch c.channels {
	case 1:
		return c.samples
	case 2:
		out := make([]float32, len(c.samples)/2)
		for i := range out {
			// float32 arithmetic, as swresample's float path computes it.
			out[i] = float32(math.Sqrt2/2)*c.samples[2*i] + float32(math.Sqrt2/2)*c.samples[2*i+1]
		}
		return out
	}
	n := c.channels
	out := make([]float32, len(c.samples)/n)
	for i := range out {
		var s float32
		for ch := 0; ch < n; ch++ {
			s += c.samples[i*n+ch]
		}
		out[i] = s / float32(n)
	}
	return out
}
