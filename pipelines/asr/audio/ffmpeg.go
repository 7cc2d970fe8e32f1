package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// ffmpeg decodes data with an ffmpeg subprocess, with upstream's flags (ffmpeg_read:
// `-i pipe:0 -ac 1 -ar <rate> -f f32le pipe:1`), no console interaction (-nostdin), errors
// only on stderr (kept to 4 KiB for the log), and these bounds: the input is already limited by MaxInputBytes; the output stops at
// MaxDuration (the process is killed and the request fails with ErrTooLong); the run is
// killed after Timeout or when ctx ends. MP4-family files are passed as a temporary file,
// because their index (moov) often sits after the data and a pipe cannot seek back to it.
func (d *Decoder) ffmpeg(ctx context.Context, f Format, data []byte, rate int) ([]float32, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	input := "pipe:0"
	var stdin io.Reader = bytes.NewReader(data)
	if f == MP4 {
		tmp, err := os.CreateTemp("", "infergo-audio-*.m4a")
		if err != nil {
			return nil, fmt.Errorf("audio: ffmpeg: %w", err)
		}
		defer os.Remove(tmp.Name())
		_, werr := tmp.Write(data)
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("audio: ffmpeg: %w", werr)
		}
		input, stdin = tmp.Name(), nil
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-i", input, "-vn", "-ac", "1", "-ar", strconv.Itoa(rate), "-f", "f32le", "pipe:1"}
	cmd := exec.CommandContext(ctx, d.FFmpeg, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	// After a kill, stop waiting for pipes a grandchild might hold.
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, n: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("audio: ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("audio: start ffmpeg: %w", err)
	}
	maxBytes := int64(d.maxSamples(rate)) * 4
	raw, rerr := io.ReadAll(io.LimitReader(stdout, maxBytes+1))
	tooLong := int64(len(raw)) > maxBytes
	if tooLong {
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	switch {
	case tooLong:
		return nil, ErrTooLong
	case ctx.Err() != nil:
		return nil, fmt.Errorf("audio: ffmpeg: %w", ctx.Err())
	case rerr != nil:
		return nil, fmt.Errorf("audio: ffmpeg output: %w", rerr)
	}
	n := len(raw) / 4
	if n == 0 {
		// Upstream raises "Malformed soundfile" exactly when ffmpeg produced no samples; a
		// failing exit status with output (a damaged tail) still counts as audio.
		msg := bytes.TrimSpace(stderr.Bytes())
		if werr != nil && len(msg) == 0 {
			msg = []byte(werr.Error())
		}
		return nil, fmt.Errorf("%w: ffmpeg (%s): %s", ErrMalformed, f, msg)
	}
	out := make([]float32, n)
	for i := range out {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if v != v || math.IsInf(float64(v), 0) {
			v = 0
		}
		out[i] = v
	}
	return out, nil
}

// limitedBuffer keeps the first n bytes written (ffmpeg's error text) and drops the rest, so
// a chatty decoder cannot grow memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	n   int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// FindFFmpeg returns the path of the ffmpeg executable on PATH, or "" when there is none.
func FindFFmpeg() string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return ""
	}
	return p
}

// DecodeWithFFmpeg decodes data with the ffmpeg executable at path, whatever its format, as
// upstream does (the reference the pure-Go decoders are measured against).
func DecodeWithFFmpeg(ctx context.Context, path string, data []byte, rate int) ([]float32, error) {
	d := &Decoder{FFmpeg: path}
	return d.ffmpeg(ctx, Sniff(data), data, rate)
}
