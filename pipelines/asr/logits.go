package asr

import (
	"math"
	"slices"
)

// logitRules are Whisper's logits processors in the order WhisperForConditionalGeneration
// applies them before greedy selection: begin-suppression (first generated position only),
// suppress_tokens, then the timestamp rules when timestamps are requested.
type logitRules struct {
	suppress      []int32
	beginSuppress []int32
	// Timestamps: tsBegin is the first timestamp token (<|0.00|>, right after
	// <|notimestamps|>), -1 when the tokenizer has none.
	noTimestamps int32
	tsBegin      int32
	tsEOS        int32 // the eos id the timestamp rules protect
	maxInitialTS int   // max_initial_timestamp_index; -1 for none
}

var negInf = float32(math.Inf(-1))

// pick applies the rules to logits (modified in place) for a sequence whose tokens so far are
// ids, of which the first begin are the prompt, and returns the greedy choice: the first
// index of the maximum, as torch.argmax.
func (r *logitRules) pick(logits []float32, ids []int32, begin int, timestamps bool) int32 {
	if len(ids) == begin {
		for _, t := range r.beginSuppress {
			if int(t) < len(logits) {
				logits[t] = negInf
			}
		}
	}
	for _, t := range r.suppress {
		if int(t) < len(logits) {
			logits[t] = negInf
		}
	}
	if timestamps && r.tsBegin >= 0 {
		r.timestampRules(logits, ids, begin)
	}
	return argmax(logits)
}

// timestampRules is WhisperTimeStampLogitsProcessor for one sequence: <|notimestamps|> is
// never chosen; timestamps come in pairs (after a lone timestamp only another timestamp or
// eos, after a pair only text); timestamps never decrease; the first token is a timestamp no
// later than max_initial_timestamp_index; and when the timestamps together are more likely
// than the best text token, a timestamp is forced.
func (r *logitRules) timestampRules(logits []float32, ids []int32, begin int) {
	tb := int(r.tsBegin)
	if int(r.noTimestamps) < len(logits) && r.noTimestamps >= 0 {
		logits[r.noTimestamps] = negInf
	}
	seq := ids[begin:]
	isTS := func(t int32) bool { return t >= r.tsBegin }
	last := len(seq) >= 1 && isTS(seq[len(seq)-1])
	penultimate := len(seq) < 2 || isTS(seq[len(seq)-2])
	if last {
		if penultimate {
			fill(logits[tb:], negInf)
		} else {
			fill(logits[:min(int(r.tsEOS), len(logits))], negInf)
		}
	}
	lastTS := int32(-1)
	for _, t := range seq {
		if isTS(t) {
			lastTS = t
		}
	}
	if lastTS >= 0 {
		upto := lastTS + 1 // avoid emitting <|0.00|> again
		if last && !penultimate {
			upto = lastTS
		}
		fill(logits[tb:min(int(upto), len(logits))], negInf)
	}
	if len(ids) == begin {
		fill(logits[:tb], negInf)
		if r.maxInitialTS >= 0 {
			if from := tb + r.maxInitialTS + 1; from < len(logits) {
				fill(logits[from:], negInf)
			}
		}
	}
	// Sum of timestamp probabilities against the best text token, in log space.
	lse := logSumExp(logits)
	if math.IsInf(lse, -1) {
		return
	}
	tsLogprob := logSumExp(logits[tb:]) - lse
	maxText := math.Inf(-1)
	for _, v := range logits[:tb] {
		maxText = max(maxText, float64(v))
	}
	if tsLogprob > maxText-lse {
		fill(logits[:tb], negInf)
	}
}

func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

func logSumExp(s []float32) float64 {
	m := math.Inf(-1)
	for _, v := range s {
		m = max(m, float64(v))
	}
	if math.IsInf(m, -1) {
		return m
	}
	var sum float64
	for _, v := range s {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum)
}

// argmax returns the first index of the largest value (NaN never wins).
func argmax(s []float32) int32 {
	best := 0
	for i, v := range s {
		if v > s[best] || (s[best] != s[best] && v == v) {
			best = i
		}
	}
	return int32(best)
}

// restrictTo sets every logit outside keep to -inf (language detection considers only the
// language tokens).
func restrictTo(logits []float32, keep []int32) {
	allowed := make([]bool, len(logits))
	for _, k := range keep {
		if int(k) < len(logits) {
			allowed[k] = true
		}
	}
	for i := range logits {
		if !allowed[i] {
			logits[i] = negInf
		}
	}
}

// isEOS reports whether t ends a sequence.
func isEOS(eos []int32, t int32) bool { return slices.Contains(eos, t) }
