package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const audioDir = "../../../testdata/audio"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(audioDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ffmpegPath returns ffmpeg or fails: `make deps` installs it, so a missing binary is a broken
// set-up, not a reason to skip formats.
func ffmpegPath(t testing.TB) string {
	t.Helper()
	p := FindFFmpeg()
	if p == "" {
		t.Fatal("ffmpeg is not on PATH; `make deps` installs it (apt-get install ffmpeg)")
	}
	return p
}

// snr compares got with the reference in dB.
func snr(ref, got []float32) float64 {
	var num, den float64
	for i := range ref {
		num += float64(ref[i]) * float64(ref[i])
		d := float64(ref[i]) - float64(got[i])
		den += d * d
	}
	if den == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(num/den)
}

// TestFormats decodes every test file at 16 kHz: each must sniff as its container, decode to
// exactly the sample count ffmpeg gives (upstream's `ffmpeg -i pipe:0 -ac 1 -ar 16000`), and
// for the pure-Go formats match ffmpeg's samples to the listed SNR.
func TestFormats(t *testing.T) {
	ff := ffmpegPath(t)
	cases := []struct {
		file    string
		format  Format
		samples int
		minSNR  float64 // pure Go against ffmpeg; 0 for formats ffmpeg decodes
	}{
		{"speech.wav", WAV, 47307, math.Inf(1)},
		{"speech_f32.wav", WAV, 47307, math.Inf(1)},
		{"speech_22k_stereo.wav", WAV, 47339, 130}, // mixdown + 22.05→16 kHz
		{"speech.flac", FLAC, 47307, math.Inf(1)},
		{"speech_44k_stereo_24bit.flac", FLAC, 47339, 130}, // 24-bit, 44.1→16 kHz
		{"speech.mp3", MP3, 48960, 65},                     // go-mp3 decodes to 16-bit
		{"speech_44k_stereo.mp3", MP3, 47648, 45},          // LAME tag: encoder delay trimmed; 24→16 kHz
		{"speech_stereo.ogg", OggVorbis, 47339, 130},
		{"long.ogg", OggVorbis, 560252, 130},
		{"speech.opus", OggOpus, 47339, 0},
		{"speech.webm", Matroska, 47339, 0},
		{"speech.m4a", MP4, 48128, 0},
	}
	d := &Decoder{FFmpeg: ff}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := read(t, c.file)
			if f := Sniff(data); f != c.format {
				t.Fatalf("sniffed %s, want %s", f, c.format)
			}
			got, err := d.Decode(context.Background(), data, 16000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.samples {
				t.Fatalf("%d samples, want %d", len(got), c.samples)
			}
			if c.minSNR == 0 {
				return
			}
			ref, err := DecodeWithFFmpeg(context.Background(), ff, data, 16000)
			if err != nil {
				t.Fatal(err)
			}
			if len(ref) != len(got) {
				t.Fatalf("ffmpeg gives %d samples, Go %d", len(ref), len(got))
			}
			if s := snr(ref, got); s < c.minSNR {
				t.Fatalf("SNR against ffmpeg %.1f dB, want ≥ %.0f", s, c.minSNR)
			} else {
				t.Logf("SNR against ffmpeg: %.1f dB", s)
			}
		})
	}
}

// TestRates follows upstream's test_audio: one file at 16, 48 and 8 kHz.
func TestRates(t *testing.T) {
	data := read(t, "speech.flac")
	d := &Decoder{}
	for rate, want := range map[int]int{16000: 47307, 48000: 3 * 47307, 8000: (47307 + 1) / 2} {
		got, err := d.Decode(context.Background(), data, rate)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Errorf("%d Hz: %d samples, want %d", rate, len(got), want)
		}
	}
}

func TestMalformed(t *testing.T) {
	d := &Decoder{FFmpeg: ffmpegPath(t)}
	bodies := map[string][]byte{
		"malformed.flac": read(t, "malformed.flac"),
		"empty":          nil,
		"json":           []byte(`{"inputs": "hello"}`),
		"text":           []byte("This is a test"),
		"riff only":      []byte("RIFF\x00\x00\x00\x00WAVE"),
		"truncated ogg":  read(t, "speech_stereo.ogg")[:60],
		"flac header":    read(t, "speech.flac")[:42],
		"id3 only":       []byte("ID3\x04\x00\x00\x00\x00\x00\x00"),
	}
	for name, b := range bodies {
		_, err := d.Decode(context.Background(), b, 16000)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
		if err != nil && ErrMalformed.Error() != "Malformed soundfile" {
			t.Fatal("the message is part of the HTTP contract")
		}
	}
}

func TestNoFFmpeg(t *testing.T) {
	d := &Decoder{}
	if _, err := d.Decode(context.Background(), read(t, "speech.webm"), 16000); !errors.Is(err, ErrMalformed) {
		t.Fatalf("webm without ffmpeg: %v", err)
	}
	if _, err := d.Decode(context.Background(), read(t, "speech.wav"), 16000); err != nil {
		t.Fatalf("wav without ffmpeg: %v", err)
	}
}

func TestLimits(t *testing.T) {
	wav := read(t, "speech.wav")
	if _, err := (&Decoder{MaxDuration: time.Second}).Decode(context.Background(), wav, 16000); !errors.Is(err, ErrTooLong) {
		t.Errorf("3 s with a 1 s limit: %v", err)
	}
	if _, err := (&Decoder{MaxInputBytes: 1000}).Decode(context.Background(), wav, 16000); !errors.Is(err, ErrMalformed) {
		t.Errorf("input over the byte limit: %v", err)
	}
	ff := ffmpegPath(t)
	if _, err := (&Decoder{FFmpeg: ff, MaxDuration: time.Second}).Decode(context.Background(), read(t, "speech.webm"), 16000); !errors.Is(err, ErrTooLong) {
		t.Errorf("ffmpeg output over the limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Decoder{FFmpeg: ff}).Decode(ctx, read(t, "speech.webm"), 16000); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	if _, err := (&Decoder{FFmpeg: ff, Timeout: time.Nanosecond}).Decode(context.Background(), read(t, "speech.webm"), 16000); err == nil || errors.Is(err, ErrMalformed) {
		t.Errorf("ffmpeg past its timeout: %v", err)
	}
}

// wavBytes writes a WAV file with the given format tag, bits and raw sample bytes.
func wavBytes(tag, channels, rate, bits int, data []byte, extensible bool) []byte {
	var b bytes.Buffer
	fmtLen := 16
	if extensible {
		fmtLen = 40
	}
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(4+8+fmtLen+8+len(data)))
	b.WriteString("WAVE")
	b.WriteString("note") // an unrelated chunk of odd size (padded)
	binary.Write(&b, le, uint32(3))
	b.WriteString("abc\x00")
	b.WriteString("fmt ")
	binary.Write(&b, le, uint32(fmtLen))
	wTag := tag
	if extensible {
		wTag = wavExtensible
	}
	binary.Write(&b, le, uint16(wTag))
	binary.Write(&b, le, uint16(channels))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(rate*channels*bits/8))
	binary.Write(&b, le, uint16(channels*bits/8))
	binary.Write(&b, le, uint16(bits))
	if extensible {
		binary.Write(&b, le, uint16(22))
		binary.Write(&b, le, uint16(bits))
		binary.Write(&b, le, uint32(0))
		binary.Write(&b, le, uint16(tag))
		b.Write(make([]byte, 14))
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func TestWAVEncodings(t *testing.T) {
	want := []float32{0, 0.5, -0.5, 0.25}
	le := binary.LittleEndian
	enc := map[string][]byte{}
	var b8, b16, b24, b32, f32, f64 []byte
	for _, v := range want {
		b8 = append(b8, byte(int(v*128)+128))
		b16 = le.AppendUint16(b16, uint16(int16(v*32768)))
		x := int32(v * (1 << 23))
		b24 = append(b24, byte(x), byte(x>>8), byte(x>>16))
		b32 = le.AppendUint32(b32, uint32(int32(float64(v)*(1<<31))))
		f32 = le.AppendUint32(f32, math.Float32bits(v))
		f64 = le.AppendUint64(f64, math.Float64bits(float64(v)))
	}
	enc["u8"] = wavBytes(wavPCM, 1, 16000, 8, b8, false)
	enc["s16"] = wavBytes(wavPCM, 1, 16000, 16, b16, false)
	enc["s24"] = wavBytes(wavPCM, 1, 16000, 24, b24, true)
	enc["s32"] = wavBytes(wavPCM, 1, 16000, 32, b32, false)
	enc["f32"] = wavBytes(wavFloat, 1, 16000, 32, f32, false)
	enc["f64"] = wavBytes(wavFloat, 1, 16000, 64, f64, true)
	for name, b := range enc {
		got, err := (&Decoder{}).Decode(context.Background(), b, 16000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %v", name, got)
		}
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("%s: %v, want %v", name, got, want)
			}
		}
	}
	// A streamed WAV (ffmpeg writing to a pipe) carries 0xFFFFFFFF as the data size.
	streamed := append([]byte(nil), enc["s16"]...)
	i := bytes.Index(streamed, []byte("data"))
	binary.LittleEndian.PutUint32(streamed[i+4:], 0xFFFFFFFF)
	if got, err := (&Decoder{}).Decode(context.Background(), streamed, 16000); err != nil || len(got) != len(want) {
		t.Fatalf("streamed WAV: %v %v", got, err)
	}
	// Stereo mixes down with ffmpeg's √½ weights.
	left, right := int16(16384), int16(-8192)
	st := wavBytes(wavPCM, 2, 16000, 16, le.AppendUint16(le.AppendUint16(nil, uint16(left)), uint16(right)), false)
	got, err := (&Decoder{}).Decode(context.Background(), st, 16000)
	if err != nil || len(got) != 1 || math.Abs(float64(got[0])-math.Sqrt2/2*0.25) > 1e-6 {
		t.Fatalf("stereo mixdown %v %v", got, err)
	}
	// An encoding we do not read (A-law) is malformed without ffmpeg …
	alaw := wavBytes(6, 1, 8000, 8, bytes.Repeat([]byte{0xd5, 0x55, 0xd5}, 100), false)
	if _, err := (&Decoder{}).Decode(context.Background(), alaw, 16000); !errors.Is(err, ErrMalformed) {
		t.Fatalf("A-law without ffmpeg: %v", err)
	}
	// … and decodes through the fallback with it.
	if got, err := (&Decoder{FFmpeg: ffmpegPath(t)}).Decode(context.Background(), alaw, 16000); err != nil || len(got) != 600 {
		t.Fatalf("A-law through ffmpeg: %d samples, %v", len(got), err)
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]Format{
		"RIFF\x00\x00\x00\x00WAVEfmt ": WAV,
		"fLaC\x00":                     FLAC,
		"\x1aE\xdf\xa3\x01":            Matroska,
		"\x00\x00\x00\x20ftypM4A ":     MP4,
		"FORM\x00\x00\x00\x00AIFF":     AIFF,
		"\xff\xf1\x50\x80":             ADTS,
		"hello world":                  Unknown,
		"":                             Unknown,
	}
	for in, want := range cases {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %s, want %s", in, got, want)
		}
	}
	for name, want := range map[string]Format{"speech.mp3": MP3, "speech.opus": OggOpus, "speech_stereo.ogg": OggVorbis} {
		if got := Sniff(read(t, name)); got != want {
			t.Errorf("%s sniffed as %s", name, got)
		}
	}
	// An ID3 tag in front of the frames is skipped.
	id3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x05hello"), read(t, "speech.mp3")...)
	if got := Sniff(id3); got != MP3 {
		t.Errorf("ID3-tagged MP3 sniffed as %s", got)
	}
	if got, err := (&Decoder{}).Decode(context.Background(), id3, 16000); err != nil || len(got) != 48960 {
		t.Errorf("ID3-tagged MP3: %d samples, %v", len(got), err)
	}
}

func TestResampleSine(t *testing.T) {
	// A 440 Hz tone keeps its frequency and amplitude through 44.1 → 16 kHz.
	in := make([]float32, 44100)
	for i := range in {
		in[i] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i)/44100))
	}
	out := Resample(in, 44100, 16000)
	if len(out) != 16000 {
		t.Fatalf("%d samples", len(out))
	}
	var worst float64
	for i := 100; i < len(out)-100; i++ {
		want := 0.5 * math.Sin(2*math.Pi*440*float64(i)/16000)
		worst = max(worst, math.Abs(float64(out[i])-want))
	}
	if worst > 1e-3 {
		t.Fatalf("max error %g", worst)
	}
	if got := Resample(in, 16000, 16000); &got[0] != &in[0] {
		t.Fatal("same rate should not copy")
	}
	if !strings.Contains(Format(200).String(), "200") {
		t.Fatal("format names")
	}
}

// FuzzDecodeAudio feeds arbitrary bytes to the sniffer and the pure-Go decoders: they must
// return samples or an error, never panic or hang.
func FuzzDecodeAudio(f *testing.F) {
	for _, name := range []string{"speech.wav", "speech.flac", "speech.mp3", "speech_stereo.ogg", "speech_44k_stereo.mp3"} {
		b, err := os.ReadFile(filepath.Join(audioDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)]) // small seeds keep the mutator fast
	}
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x80\x3e\x00\x00\x00\xfa\x00\x00\x04\x00\x10\x00data\x04\x00\x00\x00\x01\x02\x03\x04"))
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00"))
	d := &Decoder{MaxDuration: 10 * time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		pcm, err := d.Decode(context.Background(), data, 16000)
		if err == nil && len(pcm) == 0 {
			t.Fatal("no error and no samples")
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error type: %v", err)
		}
	})
}
