package tokenize

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Benchmarks on the real bert-base-uncased tokenizer over the shared benchmark corpora:
//
//	go test -run '^$' -bench 'BenchmarkEncode' -benchmem ./tokenize/
//
// tokens/s counts the ids produced (special tokens included), per wall-clock second; tokens/cpu-s
// per second of CPU used by the process (all threads, GC included), which other load on the
// machine does not distort.

func benchLines(b *testing.B, name string) []string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("..", "bench", "testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func benchTokenizer(b *testing.B, name string) *Tokenizer {
	b.Helper()
	return loadTokenizer(b, filepath.Join(fixturesDir, "real-tokenizers", name, "tokenizer.json"))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportTokens(b *testing.B, tokens int, cpu0 time.Duration) {
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(tokens)/cpu.Seconds(), "tokens/cpu-s")
	}
}

func benchEncode(b *testing.B, tok, corpus string) {
	tk := benchTokenizer(b, tok)
	lines := benchLines(b, corpus)
	opts := Options{AddSpecialTokens: true}
	bytes := 0
	for _, l := range lines {
		bytes += len(l)
	}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	tokens := 0
	for range b.N {
		for _, l := range lines {
			e, err := tk.Encode(l, opts)
			if err != nil {
				b.Fatal(err)
			}
			tokens += e.Len()
		}
	}
	reportTokens(b, tokens, cpu0)
}

func benchEncodeBatch(b *testing.B, tok, corpus string, batch int) {
	tk := benchTokenizer(b, tok)
	lines := benchLines(b, corpus)
	opts := Options{AddSpecialTokens: true, Padding: &Padding{}}
	var inputs [][]Input
	for i := 0; i < len(lines); i += batch {
		var in []Input
		for _, l := range lines[i:min(i+batch, len(lines))] {
			in = append(in, Input{Text: l})
		}
		inputs = append(inputs, in)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	tokens := 0
	for range b.N {
		for _, in := range inputs {
			encs, err := tk.EncodeBatch(in, opts)
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range encs {
				for _, m := range e.AttentionMask {
					tokens += int(m)
				}
			}
		}
	}
	reportTokens(b, tokens, cpu0)
}

func BenchmarkEncodeBertShort(b *testing.B)    { benchEncode(b, "bert-base-uncased", "short.txt") }
func BenchmarkEncodeBertPassages(b *testing.B) { benchEncode(b, "bert-base-uncased", "passages.txt") }
func BenchmarkEncodeBatchBertShort(b *testing.B) {
	benchEncodeBatch(b, "bert-base-uncased", "short.txt", 64)
}
func BenchmarkEncodeBatchBertPassages(b *testing.B) {
	benchEncodeBatch(b, "bert-base-uncased", "passages.txt", 64)
}
func BenchmarkEncodeGPT2Passages(b *testing.B) { benchEncode(b, "gpt2", "passages.txt") }
