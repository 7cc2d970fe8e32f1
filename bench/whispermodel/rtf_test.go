package whispermodel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines/asr"
	"github.com/infergo/infergo/pipelines/asr/audio"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

// Real-time factor of speech recognition. RTF = processing wall time / audio duration
// (lower is better; 0.1 means 10 s of audio take 1 s); the benchmarks also report its
// inverse, x_realtime, and cpu_rtf, process CPU seconds per audio second, which other load
// on a shared machine does not inflate. Each operation transcribes 30 s of espeak speech (the first 30 s of
// testdata/audio/long.ogg: one full Whisper window) per request, decoding a fixed number of
// tokens per window (random weights never emit end-of-text; 100 tokens is roughly what 30 s
// of speech produces), with `concurrent` requests at once.
//
//	go test -run '^$' -bench WhisperRTF -benchtime 3x ./bench/whispermodel/
//
// INFERGO_BENCH_THREADS sets ONNX Runtime's intra-op threads per session (default 1) and
// INFERGO_BENCH_SHAPES the generated shapes ("tiny", "tiny,base").
func BenchmarkWhisperRTF(b *testing.B) {
	threads := envInt("INFERGO_BENCH_THREADS", 1)
	models := []struct {
		name string
		dir  func(b *testing.B) string
	}{{"fixture-tiny-whisper", func(*testing.B) string { return testutil.Fixture("tiny-whisper") }}}
	shapes := map[string]Shape{"tiny": Tiny, "base": Base}
	for _, s := range splitList(os.Getenv("INFERGO_BENCH_SHAPES"), "tiny") {
		shape, ok := shapes[s]
		if !ok {
			b.Fatalf("unknown shape %q", s)
		}
		models = append(models, struct {
			name string
			dir  func(b *testing.B) string
		}{shape.Name, func(b *testing.B) string {
			dir, err := Write(testutil.Root(), filepath.Join(testutil.Root(), "bench", "testdata", shape.Name), shape)
			if err != nil {
				b.Fatal(err)
			}
			return dir
		}})
	}
	pcm := benchAudio(b)
	for _, m := range models {
		r := loadBench(b, m.dir(b), threads) // once: b.Run calls its function more than once
		for _, concurrent := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/tokens=100/concurrent=%d", m.name, concurrent), func(b *testing.B) {
				runRTF(b, r, pcm, concurrent, asr.Options{Language: "en", MaxNewTokens: 100})
			})
		}
	}
}

// BenchmarkCTCRTF times the CTC fixture on the same 30 s.
func BenchmarkCTCRTF(b *testing.B) {
	pcm := benchAudio(b)
	r := loadBench(b, testutil.Fixture("tiny-wav2vec2-ctc"), envInt("INFERGO_BENCH_THREADS", 1))
	for _, concurrent := range []int{1, 4} {
		b.Run(fmt.Sprintf("fixture-tiny-wav2vec2-ctc/concurrent=%d", concurrent), func(b *testing.B) {
			runRTF(b, r, pcm, concurrent, asr.Options{})
		})
	}
}

func runRTF(b *testing.B, r asr.Recognizer, pcm []float32, concurrent int, o asr.Options) {
	ctx := context.Background()
	if _, err := r.Transcribe(ctx, pcm, o); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for range concurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Transcribe(ctx, pcm, o); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	wall, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
	audioSec := float64(len(pcm)) / 16000 * float64(concurrent*b.N)
	b.ReportMetric(wall/audioSec, "rtf")
	b.ReportMetric(audioSec/wall, "x_realtime")
	// CPU seconds per audio second: robust to other load on a shared machine.
	b.ReportMetric(cpu/audioSec, "cpu_rtf")
}

// cpuSeconds is the process's user + system CPU time (ONNX Runtime's threads included).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func benchAudio(b *testing.B) []float32 {
	data, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "audio", "long.ogg"))
	if err != nil {
		b.Fatal(err)
	}
	pcm, err := (&audio.Decoder{}).Decode(context.Background(), data, 16000)
	if err != nil {
		b.Fatal(err)
	}
	return pcm[:30*16000]
}

func loadBench(b *testing.B, dir string, threads int) asr.Recognizer {
	env, err := ort.NewEnvironment("")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	r, err := asr.Load(context.Background(), repo, asr.LoadOptions{Opener: env,
		Runtime: runtime.Options{IntraOpThreads: threads}, Sched: sched.Config{MaxQueueDelay: 5 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func splitList(s, def string) []string {
	if s == "" {
		s = def
	}
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
