package asr

import (
	"math"
	"strings"
)

// Long audio follows transformers' chunked ASR pipeline: the audio is cut into windows of
// chunk_length seconds that overlap by stride_length on each side (chunk_iter), every window
// is transcribed on its own, and the token sequences are stitched where they overlap
// (WhisperTokenizer._decode_asr and its _find_longest_common_sequence). This file holds the
// Go versions of those pieces.

// window is one chunk of the input, with the samples at each end that overlap a neighbour.
type window struct {
	start, end  int // samples [start, end) of the input
	left, right int // overlap with the previous / next window, in samples
}

// chunkWindows is the pipeline's chunk_iter: windows of chunkLen samples starting every
// chunkLen − strideLeft − strideRight samples; the first has no left stride and the last no
// right stride; a window that would hold only left stride is dropped.
func chunkWindows(n, chunkLen, strideLeft, strideRight int) []window {
	step := chunkLen - strideLeft - strideRight
	var out []window
	for start := 0; start < n; start += step {
		end := start + chunkLen
		isLast := end >= n
		w := window{start: start, end: min(end, n)}
		if start != 0 {
			w.left = strideLeft
		}
		if !isLast {
			w.right = strideRight
		}
		if w.end-w.start > w.left {
			out = append(out, w)
		}
		if isLast {
			break
		}
	}
	return out
}

// Chunk is a piece of the transcript with its time span in seconds; Start or End is nil
// where Whisper gave no timestamp (the last chunk of audio cut mid-word).
type Chunk struct {
	Text       string
	Start, End *float64
}

// tokenInfo classifies token ids for decodeASR.
type tokenInfo struct {
	tsBegin   int32 // first timestamp token; -1 if the tokenizer has none
	special   func(int32) bool
	language  func(int32) (string, bool) // language code of a language token
	decode    func([]int32) string
	precision float64 // seconds per timestamp step (0.02)
}

// windowTokens is one window's generated tokens and its stride, in seconds.
type windowTokens struct {
	tokens                []int32
	chunkLen, left, right float64
	hasStride             bool
}

// decodeASR is WhisperTokenizer._decode_asr without word timestamps or language output: it
// walks every window's tokens, splits text on timestamp pairs into chunks (skipping the
// timestamps that fall inside strides), and merges the text tokens of overlapping windows
// with longestCommonSequence before decoding them.
func decodeASR(outputs []windowTokens, ti tokenInfo, timestamps bool) (string, []Chunk) {
	type chunk struct {
		lang       string
		start, end *float64
		text       string
	}
	var (
		lastLang     string
		chunks       []chunk
		cur          = chunk{}
		timeOffset   float64
		previous     [][]int32
		skip         bool
		rightStride  float64
		isTimestamp  = func(t int32) bool { return ti.tsBegin >= 0 && t >= ti.tsBegin }
		newChunk     = func() chunk { return chunk{lang: lastLang} }
		resolvedText = func() string { return ti.decode(longestCommonSequence(previous)) }
	)
	for _, out := range outputs {
		tokens := out.tokens
		var lastTimestamp int32 = -1
		firstTimestamp := float64(ti.tsBegin)
		var curMax, prevSegments, penultimate float64
		if out.hasStride {
			timeOffset -= out.left
			rightStride = out.chunkLen - out.right
			if out.left != 0 {
				firstTimestamp = out.left/ti.precision + float64(ti.tsBegin)
			}
			if out.right != 0 {
				for i := len(tokens) - 1; i >= 0; i-- {
					t := tokens[i]
					if isTimestamp(t) {
						if lastTimestamp >= 0 && float64(t-ti.tsBegin)*ti.precision < rightStride {
							break
						}
						lastTimestamp = t
					}
				}
			}
		}
		var current []int32
		for i, t := range tokens {
			switch {
			case isTimestamp(t):
				ts := float64(t-ti.tsBegin) * ti.precision
				if ts < curMax {
					// A new segment started (long-form output): timestamps restart at 0.
					lastSingle := i >= 2 && !(isTimestamp(tokens[i-1]) && isTimestamp(tokens[i-2]))
					if lastSingle {
						prevSegments += ti.precision * 1500
					} else {
						curMax = penultimate
						prevSegments += penultimate
					}
				}
				penultimate = curMax
				curMax = ts
				tm := roundTo(float64(t-ti.tsBegin)*ti.precision+timeOffset+prevSegments, 2)
				switch {
				case lastTimestamp >= 0 && t >= lastTimestamp:
					// In the right stride: resolved by the next window; skip its pair too.
					skip = true
				case skip || (len(previous) > 0 && float64(t) < firstTimestamp):
					skip = false
				case cur.start == nil:
					cur.start = &tm
				case tm == *cur.start:
					// A duplicate timestamp where a start was taken for a stop: ignore it.
				default:
					cur.end = &tm
					previous = append(previous, current)
					cur.text = resolvedText()
					chunks = append(chunks, cur)
					previous, current = nil, nil
					cur = newChunk()
				}
			case ti.special(t):
				if lang, ok := ti.language(t); ok {
					if lastLang != "" && lang != lastLang && !timestamps {
						previous = append(previous, current)
						cur.text = resolvedText()
						chunks = append(chunks, cur)
						previous, current = nil, nil
						cur = newChunk()
					}
					cur.lang, lastLang = lang, lang
				}
			default:
				current = append(current, t)
			}
		}
		if out.hasStride {
			timeOffset += out.chunkLen - out.right
		}
		if len(current) > 0 {
			previous = append(previous, current)
		} else if !anyTokens(previous) {
			cur = newChunk()
			previous, current = nil, nil
		}
	}
	if len(previous) > 0 {
		cur.text = resolvedText()
		chunks = append(chunks, cur)
	}
	var text strings.Builder
	out := make([]Chunk, 0, len(chunks))
	for _, c := range chunks {
		text.WriteString(c.text)
		out = append(out, Chunk{Text: c.text, Start: c.start, End: c.end})
	}
	if !timestamps {
		out = nil
	}
	return text.String(), out
}

func anyTokens(seqs [][]int32) bool {
	for _, s := range seqs {
		if len(s) > 0 {
			return true
		}
	}
	return false
}

// roundTo rounds like Python's round(x, n) for the values seen here (half to even on the
// scaled value).
func roundTo(x float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.RoundToEven(x*p) / p
}

// longestCommonSequence stitches token sequences of overlapping windows: for each next
// sequence it slides it along the end of what was gathered so far, scores every overlap by
// the fraction of equal tokens (plus a small bonus for longer overlaps, needing at least
// two matches), and joins at the middle of the best overlap — the left sequence wins the
// first half, the right one the second.
func longestCommonSequence(seqs [][]int32) []int32 {
	if len(seqs) == 0 {
		return nil
	}
	left := seqs[0]
	var total []int32
	for _, right := range seqs[1:] {
		ll, rl := len(left), len(right)
		best := 0.0
		bls, ble, brs, bre := ll, ll, 0, 0
		for i := 1; i < ll+rl; i++ {
			eps := float64(i) / 10000
			ls, le := max(0, ll-i), min(ll, ll+rl-i)
			rs, re := max(0, i-ll), min(rl, i)
			matches := 0
			for k := 0; k < le-ls; k++ {
				if left[ls+k] == right[rs+k] {
					matches++
				}
			}
			score := float64(matches)/float64(i) + eps
			if matches > 1 && score > best {
				best = score
				bls, ble, brs, bre = ls, le, rs, re
			}
		}
		lmid, rmid := (ble+bls)/2, (bre+brs)/2
		total = append(total, left[:lmid]...)
		left = right[rmid:]
	}
	return append(total, left...)
}
