package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	mp3 "github.com/hajimehoshi/go-mp3"
)

// decoderDelay is the MP3 synthesis filterbank delay in samples (528 + 1), which LAME's
// encoder delay does not include and ffmpeg adds to it.
const decoderDelay = 529

// decodeMP3 decodes MPEG audio layer III with github.com/hajimehoshi/go-mp3 and then trims
// what that decoder leaves in but ffmpeg (and so upstream) does not: the Xing/Info frame at
// the start, which go-mp3 decodes as a frame of silence, and — when a LAME tag gives them —
// the encoder delay plus decoder delay at the start. go-mp3
// always produces 16-bit stereo, so mono files are reduced to one channel again.
func decodeMP3(data []byte, limit func(int) int) (c clip, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mp3 decoder panic: %v", p)
		}
	}()
	body := skipID3(data)
	tag, hasTag := parseXing(body)
	d, err := mp3.NewDecoder(bytes.NewReader(body))
	if err != nil {
		return clip{}, err
	}
	rate := d.SampleRate()
	if rate <= 0 {
		return clip{}, errors.New("no sampling rate")
	}
	max := limit(rate)
	if n := d.Length(); n > 0 && n/4 > int64(max)+int64(tag.spf) {
		return clip{}, ErrTooLong
	}
	raw, err := io.ReadAll(d)
	if err != nil && len(raw) == 0 {
		return clip{}, err
	}
	frames := len(raw) / 4
	start, end := 0, frames
	if hasTag {
		start = tag.spf // the Info frame itself
		if tag.lame {
			// ffmpeg skips encoder + decoder delay at the start. It trims the end padding
			// only when it can read the file as a whole; upstream pipes the body to ffmpeg,
			// which keeps the padding, so it is kept here too (same sample count).
			start += tag.delay + decoderDelay
		}
	}
	if start >= end {
		return clip{}, errors.New("no samples after the encoder delay")
	}
	if end-start > max {
		return clip{}, ErrTooLong
	}
	channels := 2
	if tag.mono {
		channels = 1
	}
	out := make([]float32, 0, (end-start)*channels)
	for i := start; i < end; i++ {
		l := float32(int16(binary.LittleEndian.Uint16(raw[4*i:]))) / (1 << 15)
		out = append(out, l)
		if channels == 2 {
			out = append(out, float32(int16(binary.LittleEndian.Uint16(raw[4*i+2:])))/(1<<15))
		}
	}
	return clip{rate: rate, channels: channels, samples: out}, nil
}

// xingTag is what the first frame's Xing/Info header (and its LAME extension) says.
type xingTag struct {
	spf            int  // samples per frame: 1152 (MPEG-1) or 576 (MPEG-2/2.5)
	mono           bool // channel mode of the first frame
	frames         int  // audio frames after the Info frame (0: unknown)
	lame           bool // a LAME/Lavf/Lavc extension with delay and padding
	delay, padding int  // encoder delay and end padding, in samples
}

// parseXing reads the Xing/Info header of the first frame, as ffmpeg's mp3 demuxer does. It
// also reports the first frame's channel mode and frame size when there is no tag.
func parseXing(b []byte) (xingTag, bool) {
	var t xingTag
	if len(b) < 4 {
		return t, false
	}
	if _, ok := mp3FrameLen(b); !ok {
		return t, false
	}
	mpeg1 := (b[1]>>3)&3 == 3
	t.mono = b[3]>>6 == 3
	t.spf = 576
	side := 17 // side information bytes after the 4-byte header
	if mpeg1 {
		t.spf = 1152
		if t.mono {
			side = 17
		} else {
			side = 32
		}
	} else if t.mono {
		side = 9
	}
	off := 4 + side
	if b[1]&1 == 0 {
		off += 2 // CRC
	}
	if len(b) < off+8 {
		return t, false
	}
	if id := string(b[off : off+4]); id != "Xing" && id != "Info" {
		return t, false
	}
	flags := binary.BigEndian.Uint32(b[off+4:])
	p := off + 8
	if flags&1 != 0 {
		if len(b) < p+4 {
			return t, true
		}
		t.frames = int(binary.BigEndian.Uint32(b[p:]))
		p += 4
	}
	if flags&2 != 0 {
		p += 4 // bytes
	}
	if flags&4 != 0 {
		p += 100 // table of contents
	}
	if flags&8 != 0 {
		p += 4 // quality
	}
	if len(b) < p+24 {
		return t, true
	}
	switch string(b[p : p+4]) {
	case "LAME", "Lavf", "Lavc":
		v := int(b[p+21])<<16 | int(b[p+22])<<8 | int(b[p+23])
		t.lame, t.delay, t.padding = true, v>>12, v&0xFFF
	}
	return t, true
}
