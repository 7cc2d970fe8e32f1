package asr

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The cases of transformers' test_find_longest_common_subsequence (tokenization_whisper).
func TestLongestCommonSequence(t *testing.T) {
	cases := []struct {
		seqs [][]int32
		want []int32
	}{
		{[][]int32{{1, 2, 3}, {2, 3, 4, 5}}, []int32{1, 2, 3, 4, 5}},
		{[][]int32{{1, 2, 3, 4, 5, 6, 7}, {2, 3, 4, 5}}, []int32{1, 2, 3, 4, 5}},
		{[][]int32{{1, 2, 3}, {4, 5, 6}}, []int32{1, 2, 3, 4, 5, 6}},
		{[][]int32{{1, 2, 3, 4, 99}, {2, 98, 4, 5, 6}}, []int32{1, 2, 3, 4, 5, 6}},
		{[][]int32{{1, 2, 99, 4, 5}, {2, 3, 4, 98, 6}}, []int32{1, 2, 99, 4, 98, 6}},
		{[][]int32{{1, 2, 3}, {2, 3, 4}, {3, 4, 5}}, []int32{1, 2, 3, 4, 5}},
		{[][]int32{{1, 2, 3, 98, 5}, {2, 99, 4, 5, 6, 7}, {4, 97, 6, 7, 8}}, []int32{1, 2, 3, 4, 5, 6, 7, 8}},
		{[][]int32{{7, 8}}, []int32{7, 8}},
		{[][]int32{{}, {1, 2}}, []int32{1, 2}},
	}
	for _, c := range cases {
		if got := longestCommonSequence(c.seqs); !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.seqs, got, c.want)
		}
	}
}

func TestChunkWindows(t *testing.T) {
	cases := []struct {
		n    int
		want []window
	}{
		{330000, []window{{0, 330000, 0, 0}}},
		{500000, []window{{0, 480000, 0, 80000}, {320000, 500000, 80000, 0}}},
		{1000000, []window{{0, 480000, 0, 80000}, {320000, 800000, 80000, 80000}, {640000, 1000000, 80000, 0}}},
		// The last window would hold only left stride: dropped.
		{800000 + 50000, []window{{0, 480000, 0, 80000}, {320000, 800000, 80000, 80000}, {640000, 850000, 80000, 0}}},
	}
	for _, c := range cases {
		if got := chunkWindows(c.n, 480000, 80000, 80000); !reflect.DeepEqual(got, c.want) {
			t.Errorf("n=%d: %v, want %v", c.n, got, c.want)
		}
	}
	if got := chunkWindows(720000, 480000, 80000, 80000); len(got) != 2 || got[1].end != 720000 {
		t.Errorf("n=720000: %v", got)
	}
}

// testTokens: ids below 10 are special (0 eos, 1 sot, 2 en, 3 de, 5 transcribe, 9
// notimestamps), 100+ are timestamps (0.02 s each), the rest text decoded as "<id>".
func testTokens() tokenInfo {
	return tokenInfo{
		tsBegin: 100, precision: 0.02,
		special: func(id int32) bool { return id < 10 },
		language: func(id int32) (string, bool) {
			switch id {
			case 2:
				return "en", true
			case 3:
				return "de", true
			}
			return "", false
		},
		decode: func(ids []int32) string {
			var sb strings.Builder
			for _, id := range ids {
				fmt.Fprintf(&sb, "<%d>", id)
			}
			return sb.String()
		},
	}
}

func ts(sec float64) int32 { return 100 + int32(sec/0.02+0.5) }

func f(x float64) *float64 { return &x }

func chunksEqual(a, b []Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	eq := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	for i := range a {
		if a[i].Text != b[i].Text || !eq(a[i].Start, b[i].Start) || !eq(a[i].End, b[i].End) {
			return false
		}
	}
	return true
}

func show(cs []Chunk) string {
	var parts []string
	for _, c := range cs {
		s, e := "nil", "nil"
		if c.Start != nil {
			s = fmt.Sprint(*c.Start)
		}
		if c.End != nil {
			e = fmt.Sprint(*c.End)
		}
		parts = append(parts, fmt.Sprintf("{%q %s %s}", c.Text, s, e))
	}
	return strings.Join(parts, " ")
}

func TestDecodeASR(t *testing.T) {
	ti := testTokens()
	// One window, no timestamps: the special tokens go, the text stays.
	text, chunks := decodeASR([]windowTokens{{tokens: []int32{1, 2, 5, 9, 50, 51, 52, 0}}}, ti, false)
	if text != "<50><51><52>" || chunks != nil {
		t.Fatalf("plain: %q %v", text, chunks)
	}

	// One window with timestamp pairs: one chunk per pair.
	text, chunks = decodeASR([]windowTokens{{tokens: []int32{1, 2, 5, ts(0), 50, 51, ts(1), ts(1), 52, ts(2), 0}}}, ti, true)
	want := []Chunk{{"<50><51>", f(0), f(1)}, {"<52>", f(1), f(2)}}
	if text != "<50><51><52>" || !chunksEqual(chunks, want) {
		t.Fatalf("timestamps: %q %s", text, show(chunks))
	}

	// Two overlapping windows without timestamps: their tokens are stitched.
	text, _ = decodeASR([]windowTokens{
		{tokens: []int32{1, 2, 5, 9, 50, 51, 52, 53, 0}, hasStride: true, chunkLen: 30, right: 5},
		{tokens: []int32{1, 2, 5, 9, 52, 53, 54, 55, 0}, hasStride: true, chunkLen: 30, left: 5},
	}, ti, false)
	if text != "<50><51><52><53><54><55>" {
		t.Fatalf("stitched: %q", text)
	}

	// Two windows with timestamps: the pair in the first window's right stride is skipped,
	// the chunk it opened is closed by the second window (times offset by 30 − 5 − 5 s), and
	// the text inside the overlap is stitched.
	text, chunks = decodeASR([]windowTokens{
		{tokens: []int32{1, ts(0), 50, 51, ts(10), ts(10), 52, 53, ts(27), 0}, hasStride: true, chunkLen: 30, right: 5},
		{tokens: []int32{1, ts(2), 52, 53, 54, ts(12), 0}, hasStride: true, chunkLen: 30, left: 5},
	}, ti, true)
	want = []Chunk{{"<50><51>", f(0), f(10)}, {"<52><53><54>", f(10), f(32)}}
	if text != "<50><51><52><53><54>" || !chunksEqual(chunks, want) {
		t.Fatalf("strided timestamps: %q %s", text, show(chunks))
	}

	// Audio cut mid-word: no final timestamp, the last chunk has no end.
	_, chunks = decodeASR([]windowTokens{{tokens: []int32{1, ts(0), 50, 51, ts(1), ts(1), 52}}}, ti, true)
	want = []Chunk{{"<50><51>", f(0), f(1)}, {"<52>", f(1), nil}}
	if !chunksEqual(chunks, want) {
		t.Fatalf("unterminated: %s", show(chunks))
	}

	// A language change between windows (no timestamps) starts a new chunk of text.
	text, _ = decodeASR([]windowTokens{
		{tokens: []int32{1, 2, 5, 9, 50, 51, 0}},
		{tokens: []int32{1, 3, 5, 9, 60, 61, 0}},
	}, ti, false)
	if text != "<50><51><60><61>" {
		t.Fatalf("language change: %q", text)
	}
}

func TestTimestampRules(t *testing.T) {
	// As in Whisper's vocabulary, eos (90 here) sits above the text tokens and below the
	// timestamps.
	r := &logitRules{noTimestamps: 9, tsBegin: 100, tsEOS: 90, maxInitialTS: 50}
	logits := func() []float32 {
		l := make([]float32, 300)
		for i := range l {
			l[i] = -5
		}
		return l
	}
	prompt := []int32{1, 2, 5}
	// First position: only timestamps up to max_initial_timestamp_index.
	l := logits()
	l[42], l[260] = 9, 8 // a text token and a late timestamp
	l[120] = 1
	if got := r.pick(l, prompt, 3, true); got != 120 {
		t.Fatalf("first token %d, want the only allowed timestamp 120", got)
	}
	// After a lone timestamp: a timestamp (not earlier than it) or eos, never text.
	l = logits()
	l[42], l[90], l[110] = 9, 3, 8
	if got := r.pick(l, append(prompt, ts(1), 40, ts(2)), 3, true); got != 90 {
		t.Fatalf("after a lone timestamp: %d, want eos", got)
	}
	// After a pair: text only.
	l = logits()
	l[42], l[250] = 1, 9
	if got := r.pick(l, append(prompt, ts(0), 40, ts(2), ts(2)), 3, true); got != 42 {
		t.Fatalf("after a pair: %d, want text", got)
	}
	// Timestamps together more likely than any text token: a timestamp is forced.
	l = logits()
	l[42] = 2
	for i := 150; i < 300; i++ {
		l[i] = 1
	}
	if got := r.pick(l, append(prompt, ts(0), 40), 3, true); got < 150 {
		t.Fatalf("probability mass on timestamps: %d, want a timestamp", got)
	}
	// <|notimestamps|> is never picked; suppression applies without timestamps too.
	r.suppress = []int32{42}
	r.beginSuppress = []int32{43}
	l = logits()
	l[9], l[42], l[43], l[44] = 9, 8, 7, 6
	if got := r.pick(l, []int32{1, 2, 5, 9}, 4, false); got != 9 {
		t.Fatalf("without timestamps %d", got) // rules other than suppression do not apply
	}
	l = logits()
	l[42], l[43], l[44] = 8, 7, 6
	if got := r.pick(l, []int32{1, 2, 5, 9}, 4, false); got != 44 {
		t.Fatalf("suppress and begin-suppress: %d, want 44", got)
	}
	l = logits()
	l[42], l[43], l[44] = 8, 7, 6
	if got := r.pick(l, []int32{1, 2, 5, 9, 50}, 4, false); got != 43 {
		t.Fatalf("begin-suppress after the first position: %d, want 43", got)
	}
}
