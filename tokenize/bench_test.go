package tokenize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Benchmarks on the real bert-base-uncased tokenizer over the shared benchmark corpora:
//
//	go test -run '^$' -bench 'BenchmarkEncode' -benchmem ./tokenize/
//
// tokens/s counts the ids produced (special tokens included), per wall-clock second.

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
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
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
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
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
