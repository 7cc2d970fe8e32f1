package tokenize

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder is Rust's Decoder::decode_chain: tokens in, tokens out; the final string is their
// concatenation.
type decoder interface {
	decodeChain(tokens []string) ([]string, error)
}

type decoderSeq []decoder

func (s decoderSeq) decodeChain(tokens []string) ([]string, error) {
	var err error
	for _, d := range s {
		if tokens, err = d.decodeChain(tokens); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// cleanup is the WordPiece decoder's clean_up_tokenization.
var cleanupReplacer = []struct{ from, to string }{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
	{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

func cleanup(s string) string {
	// Sequential replacements, as Rust chains str::replace.
	for _, r := range cleanupReplacer {
		if strings.Contains(s, r.from) {
			s = strings.ReplaceAll(s, r.from, r.to)
		}
	}
	return s
}

type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (w wordPieceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i != 0 {
			if rest, ok := strings.CutPrefix(t, w.prefix); ok {
				t = rest
			} else {
				t = " " + t
			}
		}
		if w.cleanup {
			t = cleanup(t)
		}
		out[i] = t
	}
	return out, nil
}

type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) ([]string, error) {
	return byteLevelDecode(tokens), nil
}

type metaspaceDecoder struct{ m *metaspace }

func (d metaspaceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var b strings.Builder
		for _, c := range t {
			if c == d.m.replacement {
				if i == 0 && d.m.prepend != prependNever {
					continue
				}
				c = ' '
			}
			b.WriteRune(c)
		}
		out[i] = b.String()
	}
	return out, nil
}

type bpeDecoder struct{ suffix string }

func (b bpeDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rep := " "
		if i == len(tokens)-1 {
			rep = ""
		}
		// strings.ReplaceAll and Rust's str::replace agree, also for an empty pattern.
		out[i] = strings.ReplaceAll(t, b.suffix, rep)
	}
	return out, nil
}

type ctcDecoder struct {
	pad, delimiter string
	cleanup        bool
}

func (c ctcDecoder) decodeChain(tokens []string) ([]string, error) {
	var out []string
	for i, t := range tokens {
		if i > 0 && tokens[i-1] == t {
			continue // dedup consecutive tokens
		}
		r := strings.ReplaceAll(t, c.pad, "")
		if c.cleanup {
			r = strings.ReplaceAll(cleanup(r), c.delimiter, " ")
		}
		if r != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) ([]string, error) {
	return []string{strings.Join(tokens, "")}, nil
}

type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		chars := []rune(t)
		startCut := 0
		for k := 0; k < s.start && k < len(chars); k++ {
			if chars[k] != s.content {
				break
			}
			startCut = k + 1
		}
		stopCut := len(chars)
		for k := 0; k < s.stop; k++ {
			idx := len(chars) - k - 1
			if idx < 0 || chars[idx] != s.content {
				// Rust panics on idx < 0; stop instead.
				break
			}
			stopCut = idx
		}
		if startCut > stopCut {
			out[i] = ""
			continue
		}
		out[i] = string(chars[startCut:stopCut])
	}
	return out, nil
}

type byteFallbackDecoder struct{}

// hexByte parses the two characters of "<0xHH>" like Rust's u8::from_str_radix(.., 16), which
// also accepts a leading '+'.
func hexByte(s string) (byte, bool) {
	val := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	if s[0] == '+' {
		v, ok := val(s[1])
		return v, ok
	}
	hi, ok1 := val(s[0])
	lo, ok2 := val(s[1])
	return hi<<4 | lo, ok1 && ok2
}

func (byteFallbackDecoder) decodeChain(tokens []string) ([]string, error) {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if b, ok := hexByte(t[3:5]); ok {
				pending = append(pending, b)
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out, nil
}

type replaceDecoder struct {
	pat     pattern
	content string
}

func (r replaceDecoder) decodeChain(tokens []string) ([]string, error) {
	out := make([]string, len(tokens))
	var ms []match
	for i, t := range tokens {
		var err error
		ms, err = r.pat.findMatches(t, ms[:0])
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, m := range ms {
			if m.isMatch {
				b.WriteString(r.content)
			} else if m.start <= m.end && m.end <= len(t) {
				b.WriteString(t[m.start:m.end])
			}
		}
		out[i] = b.String()
	}
	return out, nil
}

func buildDecoder(raw json.RawMessage) (decoder, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	switch head.Type {
	case "WordPiece":
		var c struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("WordPiece decoder: %w", err)
		}
		p := "##"
		if c.Prefix != nil {
			p = *c.Prefix
		}
		return wordPieceDecoder{p, boolOr(c.Cleanup, true)}, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		m, err := parseMetaspace(raw)
		if err != nil {
			return nil, err
		}
		return metaspaceDecoder{m}, nil
	case "BPEDecoder":
		var c struct {
			Suffix *string `json:"suffix"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("BPEDecoder: %w", err)
		}
		s := "</w>"
		if c.Suffix != nil {
			s = *c.Suffix
		}
		return bpeDecoder{s}, nil
	case "CTC":
		var c struct {
			Pad       *string `json:"pad_token"`
			Delimiter *string `json:"word_delimiter_token"`
			Cleanup   *bool   `json:"cleanup"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("CTC decoder: %w", err)
		}
		d := ctcDecoder{pad: "<pad>", delimiter: "|", cleanup: boolOr(c.Cleanup, true)}
		if c.Pad != nil {
			d.pad = *c.Pad
		}
		if c.Delimiter != nil {
			d.delimiter = *c.Delimiter
		}
		return d, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var c struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Strip decoder: %w", err)
		}
		r, n := utf8.DecodeRuneInString(c.Content)
		if n == 0 || n != len(c.Content) {
			return nil, fmt.Errorf("Strip decoder: content must be one character, got %q", c.Content)
		}
		if c.Start < 0 || c.Stop < 0 {
			return nil, fmt.Errorf("Strip decoder: negative start or stop")
		}
		return stripDecoder{r, c.Start, c.Stop}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Replace":
		var c struct {
			Pattern json.RawMessage `json:"pattern"`
			Content string          `json:"content"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("Replace decoder: %w", err)
		}
		p, err := buildPattern(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("Replace decoder: %w", err)
		}
		return replaceDecoder{p, c.Content}, nil
	case "Sequence":
		var c struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("decoder Sequence: %w", err)
		}
		seq := make(decoderSeq, 0, len(c.Decoders))
		for i, r := range c.Decoders {
			d, err := buildDecoder(r)
			if err != nil {
				return nil, fmt.Errorf("decoder Sequence[%d]: %w", i, err)
			}
			seq = append(seq, d)
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("decoder without a type")
	}
	return nil, fmt.Errorf("unsupported decoder %q", head.Type)
}
