package textgen

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/tokenize"
)

func TestSamplerFilters(t *testing.T) {
	logits := func() []float32 { return []float32{1, 3, 2, 3, -1, 0} }
	s := newSampler(Sampling{DoSample: true, Temperature: 1, TopK: 2, TopP: 1, RepetitionPenalty: 1}, nil, 0)
	// top_k keeps every token tied with the k-th largest: ids 1 and 3 (both 3).
	if got := s.candidates(logits()); fmt.Sprint(got) != "[1 3]" {
		t.Errorf("top_k=2: %v", got)
	}
	s.p.TopK = 3
	if got := s.candidates(logits()); fmt.Sprint(got) != "[1 3 2]" {
		t.Errorf("top_k=3: %v", got)
	}
	// top_p: probabilities of [3,3,2,1,0,-1] ≈ .39,.39,.14,.05,.02,.007; p=0.8 keeps 3.
	s.p.TopK, s.p.TopP = 0, 0.8
	if got := s.candidates(logits()); fmt.Sprint(got) != "[1 3 2]" {
		t.Errorf("top_p=0.8: %v", got)
	}
	s.p.TopP = 0 // keeps the most likely token only
	if got := s.candidates(logits()); len(got) != 1 {
		t.Errorf("top_p=0: %v", got)
	}
	// Repetition penalty: positive logits divided, negative multiplied, once per id.
	g := newSampler(Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 2}, nil, 0)
	l := logits()
	tok, lp := g.next(l, []int32{1, 1, 4}, 0)
	if l[1] != 1.5 || l[4] != -2 || tok != 3 || lp > 0 {
		t.Errorf("penalty: logits %v, token %d (%v)", l, tok, lp)
	}
	// min_new_tokens masks eos.
	g = newSampler(Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1, MinNewTokens: 1}, []int32{1, 3}, 0)
	if tok, _ := g.next(logits(), nil, 0); tok != 2 {
		t.Errorf("min_new_tokens: %d", tok)
	}
}

// Sampling follows the softmax of logits/temperature, and a seed reproduces the draws.
func TestSamplerDistribution(t *testing.T) {
	draw := func(seed uint64, temp float64) []int {
		s := newSampler(Sampling{DoSample: true, Temperature: temp, TopP: 1, RepetitionPenalty: 1, Seed: seed}, nil, 0)
		counts := make([]int, 3)
		for i := 0; i < 20000; i++ {
			tok, _ := s.next([]float32{0, float32(math.Log(2)), float32(math.Log(5))}, nil, 0)
			counts[tok]++
		}
		return counts
	}
	c := draw(1, 1)
	for i, want := range []float64{1.0 / 8, 2.0 / 8, 5.0 / 8} {
		if got := float64(c[i]) / 20000; math.Abs(got-want) > 0.015 {
			t.Errorf("token %d: frequency %.3f, want %.3f", i, got, want)
		}
	}
	if fmt.Sprint(draw(1, 1)) != fmt.Sprint(c) || fmt.Sprint(draw(2, 1)) == fmt.Sprint(c) {
		t.Errorf("seeding is not deterministic")
	}
	if hot := draw(1, 0.1); hot[2] < 19900 {
		t.Errorf("temperature 0.1 should almost always pick the top token: %v", hot)
	}
}

func TestDetokenizerPartialUTF8(t *testing.T) {
	tok, err := tokenize.FromFile(testutil.Fixture("tiny-gpt2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	// "é" is two bytes; this vocabulary spells it with two byte tokens, the first of which
	// alone decodes to U+FFFD.
	enc, err := tok.Encode("Hi é ok ☃", tokenize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetokenizer(tok, nil)
	var out strings.Builder
	for _, id := range enc.IDs {
		piece, err := d.Next(id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(piece, "\uFFFD") {
			t.Errorf("piece %q holds a broken character", piece)
		}
		out.WriteString(piece)
	}
	if out.String() != "Hi é ok ☃" {
		t.Errorf("streamed %q", out.String())
	}
}

func TestStopMatcher(t *testing.T) {
	m := NewStopMatcher([]string{"END", "", "xy"})
	pieces := []string{"ab", "cE", "N", "D tail"}
	var safe []int
	for i, p := range pieces {
		at, stop, ok := m.Add(p)
		safe = append(safe, m.Safe())
		if ok != (i == 3) {
			t.Fatalf("piece %d: match %v", i, ok)
		}
		if ok && (at != 3 || stop != "END") {
			t.Errorf("match at %d %q", at, stop)
		}
	}
	// "abcE" holds back "E"; "abcEN" holds back "EN".
	if fmt.Sprint(safe[:3]) != "[2 3 3]" {
		t.Errorf("safe %v", safe)
	}
	m = NewStopMatcher([]string{"éx"})
	m.Add("aé")
	if m.Safe() != 1 {
		t.Errorf("safe must not split é: %d", m.Safe())
	}
}

func TestKVBatchMoves(t *testing.T) {
	// One layer, 1 head, dim 1: a row's data is its positions, left-padded with zeros.
	kv := newKVBatch(1, 1, 1)
	row := func(vals ...float32) [][]float32 { return [][]float32{vals, vals} }
	rows := func() []string {
		var out []string
		d := kv.pastData(0)
		for r := 0; r < kv.rows; r++ {
			out = append(out, fmt.Sprint(d[r*kv.past:(r+1)*kv.past]))
		}
		return out
	}
	kv.add(row(1, 2), 1, 2)
	kv.add(row(3), 1, 1)
	if fmt.Sprint(rows()) != "[[1 2] [0 3]]" {
		t.Fatalf("after joins: %v", rows())
	}
	kv.add(row(4, 5, 6), 1, 3) // longer: re-pads the others
	if fmt.Sprint(rows()) != "[[0 1 2] [0 0 3] [4 5 6]]" {
		t.Fatalf("after a longer join: %v", rows())
	}
	if moved := kv.remove(0); moved != 2 || fmt.Sprint(rows()) != "[[4 5 6] [0 0 3]]" {
		t.Fatalf("remove: moved %d, %v", moved, rows())
	}
	kv.remove(0)
	kv.trim(2)
	if fmt.Sprint(rows()) != "[[3]]" || kv.past != 1 {
		t.Fatalf("trim: %v past %d", rows(), kv.past)
	}
	// A step writes present into the other set; advance makes it the past.
	p := kv.presentData(0)
	copy(p, []float32{3, 7})
	copy(kv.presentData(1), []float32{3, 7})
	kv.advance()
	if fmt.Sprint(rows()) != "[[3 7]]" || !slices.Equal(kv.pastData(1), []float32{3, 7}) {
		t.Fatalf("advance: %v", rows())
	}
}
