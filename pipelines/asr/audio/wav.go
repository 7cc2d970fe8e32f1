package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// WAV format tags (the fmt chunk's wFormatTag, or the first two bytes of the extensible
// sub-format GUID).
const (
	wavPCM        = 1
	wavFloat      = 3
	wavExtensible = 0xFFFE
)

// decodeWAV reads a RIFF/WAVE file with integer PCM (8-bit unsigned, 16/24/32-bit signed) or
// IEEE float (32/64-bit) samples. Streamed files (ffmpeg writing to a pipe) carry 0 or
// 0xFFFFFFFF as sizes; the data chunk then runs to the end of the input. limit gives the
// most frames allowed at the file's rate.
func decodeWAV(data []byte, limit func(rate int) int) (clip, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return clip{}, errors.New("not a RIFF/WAVE file")
	}
	var (
		format, channels, bits int
		rate                   int
		haveFmt                bool
	)
	p := data[12:]
	for len(p) >= 8 {
		id := string(p[:4])
		size := int64(binary.LittleEndian.Uint32(p[4:8]))
		body := p[8:]
		if id == "data" && (size == 0 || size == 0xFFFFFFFF || size > int64(len(body))) {
			size = int64(len(body)) // streamed or truncated: take what is there
		}
		if size > int64(len(body)) {
			return clip{}, fmt.Errorf("chunk %q of %d bytes is truncated", id, size)
		}
		chunk := body[:size]
		switch id {
		case "fmt ":
			if len(chunk) < 16 {
				return clip{}, errors.New("fmt chunk too short")
			}
			format = int(binary.LittleEndian.Uint16(chunk[0:2]))
			channels = int(binary.LittleEndian.Uint16(chunk[2:4]))
			rate = int(binary.LittleEndian.Uint32(chunk[4:8]))
			bits = int(binary.LittleEndian.Uint16(chunk[14:16]))
			if format == wavExtensible {
				if len(chunk) < 26 {
					return clip{}, errors.New("extensible fmt chunk too short")
				}
				format = int(binary.LittleEndian.Uint16(chunk[24:26]))
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return clip{}, errors.New("data chunk before fmt chunk")
			}
			return wavSamples(chunk, format, channels, rate, bits, limit)
		}
		// Chunks are padded to an even size.
		next := 8 + size + size&1
		if next > int64(len(p)) {
			break
		}
		p = p[next:]
	}
	return clip{}, errors.New("no data chunk")
}

func wavSamples(b []byte, format, channels, rate, bits int, limit func(int) int) (clip, error) {
	if channels < 1 || channels > 64 {
		return clip{}, fmt.Errorf("%d channels", channels)
	}
	if rate < 1 || rate > 1<<20 {
		return clip{}, fmt.Errorf("sampling rate %d", rate)
	}
	var conv func([]byte) float32
	switch {
	case format == wavPCM && bits == 8:
		conv = func(s []byte) float32 { return (float32(s[0]) - 128) / 128 }
	case format == wavPCM && bits == 16:
		conv = func(s []byte) float32 { return float32(int16(binary.LittleEndian.Uint16(s))) / (1 << 15) }
	case format == wavPCM && bits == 24:
		conv = func(s []byte) float32 {
			v := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
			return float32(v) / (1 << 23)
		}
	case format == wavPCM && bits == 32:
		conv = func(s []byte) float32 { return float32(float64(int32(binary.LittleEndian.Uint32(s))) / (1 << 31)) }
	case format == wavFloat && bits == 32:
		conv = func(s []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(s)) }
	case format == wavFloat && bits == 64:
		conv = func(s []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(s))) }
	default:
		return clip{}, fmt.Errorf("unsupported encoding: format tag %d, %d bits", format, bits)
	}
	width := bits / 8
	frame := width * channels
	frames := len(b) / frame
	if frames > limit(rate) {
		return clip{}, ErrTooLong
	}
	out := make([]float32, frames*channels)
	for i := range out {
		v := conv(b[i*width:])
		if v != v || math.IsInf(float64(v), 0) {
			v = 0 // NaN or Inf in a float file would poison every feature downstream
		}
		out[i] = v
	}
	return clip{rate: rate, channels: channels, samples: out}, nil
}

// EncodeWAV returns mono float32 samples as a 16-bit PCM WAV file (tests and tools).
func EncodeWAV(samples []float32, rate int) []byte {
	n := len(samples) * 2
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], wavPCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	for i, s := range samples {
		v := math.Round(float64(s) * (1 << 15))
		v = max(-32768, min(32767, v))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(v)))
	}
	return b
}
