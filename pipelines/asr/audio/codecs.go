package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/jfreymuth/oggvorbis"
	"github.com/mewkiz/flac"
)

// decodeFLAC decodes a native FLAC stream (github.com/mewkiz/flac). Integer samples of any
// depth are scaled by 2^(bits-1), as ffmpeg does.
func decodeFLAC(data []byte, limit func(int) int) (c clip, err error) {
	// The decoder panics on some corrupt streams; a bad upload must never take the process
	// down.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("flac decoder panic: %v", p)
		}
	}()
	st, err := flac.New(bytes.NewReader(data))
	if err != nil {
		return clip{}, err
	}
	info := st.Info
	channels, rate, bits := int(info.NChannels), int(info.SampleRate), int(info.BitsPerSample)
	if channels < 1 || rate < 1 || bits < 4 || bits > 32 {
		return clip{}, fmt.Errorf("stream info: %d channels, %d Hz, %d bits", channels, rate, bits)
	}
	max := limit(rate)
	if info.NSamples > uint64(max) {
		return clip{}, ErrTooLong
	}
	scale := 1 / float32(uint64(1)<<(bits-1))
	out := make([]float32, 0, int(info.NSamples)*channels)
	for {
		f, err := st.ParseNext()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(out) > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				break // truncated upload: keep the complete frames, as ffmpeg does
			}
			return clip{}, err
		}
		if len(f.Subframes) != channels {
			return clip{}, fmt.Errorf("frame has %d channels, stream %d", len(f.Subframes), channels)
		}
		n := f.Subframes[0].NSamples
		for _, sf := range f.Subframes {
			if sf.NSamples != n || len(sf.Samples) < n {
				return clip{}, errors.New("subframes of different lengths")
			}
		}
		if len(out)/channels+n > max {
			return clip{}, ErrTooLong
		}
		for i := 0; i < n; i++ {
			for ch := 0; ch < channels; ch++ {
				out = append(out, float32(f.Subframes[ch].Samples[i])*scale)
			}
		}
	}
	return clip{rate: rate, channels: channels, samples: out}, nil
}

// decodeVorbis decodes Ogg Vorbis (github.com/jfreymuth/oggvorbis), which already yields
// interleaved float32.
func decodeVorbis(data []byte, limit func(int) int) (c clip, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("vorbis decoder panic: %v", p)
		}
	}()
	r, err := oggvorbis.NewReader(bytes.NewReader(data))
	if err != nil {
		return clip{}, err
	}
	channels, rate := r.Channels(), r.SampleRate()
	if channels < 1 || rate < 1 {
		return clip{}, fmt.Errorf("%d channels, %d Hz", channels, rate)
	}
	max := limit(rate)
	buf := make([]float32, 4096*channels)
	var out []float32
	idle := 0 // consecutive reads that returned nothing
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if len(out)/channels > max {
			return clip{}, ErrTooLong
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(out) > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return clip{}, err
		}
		if n > 0 {
			idle = 0
		} else if idle++; idle > 1000 {
			// A corrupt stream must not spin forever.
			return clip{}, errors.New("decoder made no progress")
		}
	}
	out = out[:len(out)/channels*channels]
	return clip{rate: rate, channels: channels, samples: out}, nil
}
