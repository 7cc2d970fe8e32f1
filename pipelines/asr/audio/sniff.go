package audio

import (
	"bytes"
	"encoding/binary"
)

// Sniff identifies the container of data from its first bytes. An ID3v2 tag in front (MP3,
// sometimes FLAC or AAC) is skipped first.
func Sniff(data []byte) Format {
	b := skipID3(data)
	switch {
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return WAV
	case len(b) >= 12 && (string(b[:4]) == "RF64" || string(b[:4]) == "RIFX") && string(b[8:12]) == "WAVE":
		return Unknown // 64-bit or big-endian WAV: rare, left to ffmpeg
	case len(b) >= 4 && string(b[:4]) == "fLaC":
		return FLAC
	case len(b) >= 4 && string(b[:4]) == "OggS":
		return sniffOgg(b)
	case len(b) >= 4 && binary.BigEndian.Uint32(b) == 0x1A45DFA3:
		return Matroska
	case len(b) >= 8 && string(b[4:8]) == "ftyp":
		return MP4
	case len(b) >= 12 && string(b[:4]) == "FORM" && (string(b[8:12]) == "AIFF" || string(b[8:12]) == "AIFC"):
		return AIFF
	case len(b) >= 4 && string(b[:4]) == "caff":
		return CAF
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xF6 == 0xF0:
		return ADTS // sync 0xFFF, layer bits 00
	case isMP3Frame(b):
		return MP3
	}
	return Unknown
}

// skipID3 returns data after a leading ID3v2 tag (header: "ID3", version, flags, a 28-bit
// syncsafe size, and a 10-byte footer when flag 0x10 is set).
func skipID3(data []byte) []byte {
	if len(data) < 10 || string(data[:3]) != "ID3" {
		return data
	}
	size := int(data[6]&0x7F)<<21 | int(data[7]&0x7F)<<14 | int(data[8]&0x7F)<<7 | int(data[9]&0x7F)
	n := 10 + size
	if data[5]&0x10 != 0 {
		n += 10
	}
	if n > len(data) {
		return nil
	}
	return data[n:]
}

// sniffOgg reads the codec from the first packet of the first Ogg page.
func sniffOgg(b []byte) Format {
	if len(b) < 27 {
		return Unknown
	}
	segs := int(b[26])
	start := 27 + segs
	if start > len(b) {
		return Unknown
	}
	p := b[start:]
	switch {
	case bytes.HasPrefix(p, []byte("\x01vorbis")):
		return OggVorbis
	case bytes.HasPrefix(p, []byte("OpusHead")):
		return OggOpus
	}
	return OggOther
}

// isMP3Frame reports whether b starts with an MPEG audio layer III frame header whose
// successor (when b is long enough to hold it) is another frame header: one sync word alone
// is too weak a signal for arbitrary bytes.
func isMP3Frame(b []byte) bool {
	n, ok := mp3FrameLen(b)
	if !ok {
		return false
	}
	if len(b) < n+4 {
		return true
	}
	_, ok = mp3FrameLen(b[n:])
	return ok
}

// mp3FrameLen parses an MPEG-1/2/2.5 layer III frame header and returns the frame's size in
// bytes.
func mp3FrameLen(b []byte) (int, bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return 0, false
	}
	version := (b[1] >> 3) & 3 // 0: 2.5, 2: 2, 3: 1
	layer := (b[1] >> 1) & 3   // 1: layer III
	if version == 1 || layer != 1 {
		return 0, false
	}
	bri := b[2] >> 4
	sri := (b[2] >> 2) & 3
	if bri == 0 || bri == 15 || sri == 3 {
		return 0, false
	}
	pad := int(b[2]>>1) & 1
	var kbps, rate, coef int
	if version == 3 {
		kbps = [...]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}[bri]
		rate = [...]int{44100, 48000, 32000}[sri]
		coef = 144
	} else {
		kbps = [...]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}[bri]
		rate = [...]int{22050, 24000, 16000}[sri]
		if version == 0 {
			rate /= 2
		}
		coef = 72
	}
	return coef*kbps*1000/rate + pad, true
}
