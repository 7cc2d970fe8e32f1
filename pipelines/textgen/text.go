package textgen

import (
	"strings"
	"unicode/utf8"

	"github.com/infergo/infergo/tokenize"
)

// Detokenizer turns generated ids into text one token at a time, the way TGI's router does:
// decode a window of ids before and after the new token and emit the difference, but only
// once the window's text does not end in U+FFFD — a byte-level BPE token may carry half a
// UTF-8 character, and its text is withheld until the next token completes it. A few prompt
// ids seed the window so decoders that strip a leading space (Metaspace) see the context.
type Detokenizer struct {
	tok          *tokenize.Tokenizer
	ids          []int32
	prefix, read int
}

// contextTokens is how many prompt ids seed the window.
const contextTokens = 5

// NewDetokenizer starts after prompt.
func NewDetokenizer(tok *tokenize.Tokenizer, prompt []int32) *Detokenizer {
	ctx := prompt[max(0, len(prompt)-contextTokens):]
	d := &Detokenizer{tok: tok, ids: append([]int32(nil), ctx...)}
	d.read = len(d.ids)
	return d
}

// Next adds id and returns the text it completes ("" while a character is incomplete).
func (d *Detokenizer) Next(id int32) (string, error) {
	d.ids = append(d.ids, id)
	prev, err := d.tok.Decode(d.ids[d.prefix:d.read], false)
	if err != nil {
		return "", err
	}
	cur, err := d.tok.Decode(d.ids[d.prefix:], false)
	if err != nil {
		return "", err
	}
	if len(cur) <= len(prev) || strings.HasSuffix(cur, "\uFFFD") || !strings.HasPrefix(cur, prev) {
		return "", nil
	}
	d.prefix, d.read = d.read, len(d.ids)
	return cur[len(prev):], nil
}

// StopMatcher finds stop sequences in text that grows at its end.
type StopMatcher struct {
	stops []string
	text  []byte
}

// NewStopMatcher matches any of stops (empty strings are ignored).
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Add appends delta and reports the earliest stop sequence that now occurs in the text: its
// byte offset and the sequence. Only matches that overlap delta are new.
func (m *StopMatcher) Add(delta string) (at int, stop string, ok bool) {
	old := len(m.text)
	m.text = append(m.text, delta...)
	at = -1
	for _, s := range m.stops {
		from := max(0, old-len(s)+1)
		if i := strings.Index(string(m.text[from:]), s); i >= 0 && (at < 0 || from+i < at) {
			at, stop = from+i, s
		}
	}
	return at, stop, at >= 0
}

// Safe returns how many leading bytes of the text can no longer become part of a stop
// sequence: the text minus its longest suffix that is a prefix of some stop sequence, cut
// back to a character boundary.
func (m *StopMatcher) Safe() int {
	hold := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(m.text)); k > hold; k-- {
			if string(m.text[len(m.text)-k:]) == s[:k] {
				hold = k
				break
			}
		}
	}
	n := len(m.text) - hold
	for n > 0 && n < len(m.text) && !utf8.RuneStart(m.text[n]) {
		n--
	}
	return n
}

// Text returns the text so far.
func (m *StopMatcher) Text() string { return string(m.text) }
