package tokenize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// model turns one pre-tokenized piece into tokens.
type model interface {
	tokenize(s string, out []token, sc *scratch) ([]token, error)
	tokenToID(tok string) (int32, bool)
	idToToken(id int32) (string, bool)
	vocabSize() int
}

// vocabulary is a token<->id map shared by the models.
type vocabulary struct {
	ids    map[string]int32
	tokens []string // by id; "" with present false for holes
	has    []bool
	sparse map[int32]string // instead of tokens when the ids are far from dense
}

func newVocabulary(m map[string]int32) (*vocabulary, error) {
	v := &vocabulary{ids: m}
	maxID := int32(-1)
	for tok, id := range m {
		if id < 0 {
			return nil, fmt.Errorf("negative id %d for token %q", id, tok)
		}
		maxID = max(maxID, id)
	}
	// Deterministic choice when two tokens share an id: the smallest string.
	keys := make([]string, 0, len(m))
	for tok := range m {
		keys = append(keys, tok)
	}
	sort.Strings(keys)
	if int(maxID) > 2*len(m)+1024 {
		v.sparse = make(map[int32]string, len(m))
		for _, tok := range keys {
			if _, ok := v.sparse[m[tok]]; !ok {
				v.sparse[m[tok]] = tok
			}
		}
		return v, nil
	}
	v.tokens = make([]string, maxID+1)
	v.has = make([]bool, maxID+1)
	for _, tok := range keys {
		id := m[tok]
		if !v.has[id] {
			v.tokens[id], v.has[id] = tok, true
		}
	}
	return v, nil
}

func (v *vocabulary) tokenToID(tok string) (int32, bool) {
	id, ok := v.ids[tok]
	return id, ok
}

func (v *vocabulary) idToToken(id int32) (string, bool) {
	if v.sparse != nil {
		tok, ok := v.sparse[id]
		return tok, ok
	}
	if id < 0 || int(id) >= len(v.tokens) || !v.has[id] {
		return "", false
	}
	return v.tokens[id], true
}

func (v *vocabulary) vocabSize() int { return len(v.ids) }

// decodeVocabMap reads a {"token": id} object, keeping the last value of duplicated keys as
// serde does.
func decodeVocabMap(raw json.RawMessage) (map[string]int32, error) {
	var m map[string]int32
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// --- WordPiece ---

type wordPiece struct {
	*vocabulary
	unk      string
	prefix   string
	maxChars int
	cont     map[string]int32 // tokens starting with prefix, keyed without it
	maxLen   int              // longest key of ids, in bytes
	maxCont  int              // longest key of cont
}

func newWordPiece(v *vocabulary, unk, prefix string, maxChars int) *wordPiece {
	w := &wordPiece{vocabulary: v, unk: unk, prefix: prefix, maxChars: maxChars, cont: map[string]int32{}}
	for tok, id := range v.ids {
		w.maxLen = max(w.maxLen, len(tok))
		if rest, ok := cutPrefix(tok, prefix); ok {
			w.cont[rest] = id
			w.maxCont = max(w.maxCont, len(rest))
		}
	}
	return w
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func (w *wordPiece) unkToken(s string, out []token) ([]token, error) {
	id, ok := w.ids[w.unk]
	if !ok {
		return out, fmt.Errorf("tokenize: WordPiece: unk token %q is not in the vocabulary", w.unk)
	}
	return append(out, token{id, w.unk, 0, len(s)}), nil
}

func (w *wordPiece) tokenize(s string, out []token, sc *scratch) ([]token, error) {
	if len(s) > w.maxChars && utf8.RuneCountInString(s) > w.maxChars {
		return w.unkToken(s, out)
	}
	n0 := len(out)
	for start := 0; start < len(s); {
		m, limit := w.ids, w.maxLen
		if start > 0 {
			m, limit = w.cont, w.maxCont
		}
		end := len(s)
		if end-start > limit {
			end = start + limit
			for end > start && !utf8.RuneStart(s[end]) {
				end--
			}
		}
		found := false
		for end > start {
			if id, ok := m[s[start:end]]; ok {
				// The token string is the vocabulary key itself; reuse the vocabulary's copy.
				tok, _ := w.idToToken(id)
				key := s[start:end]
				pre := ""
				if start > 0 {
					pre = w.prefix
				}
				if len(tok) != len(pre)+len(key) || tok[:len(pre)] != pre || tok[len(pre):] != key {
					tok = strings.Clone(pre + key)
				}
				out = append(out, token{id, tok, start, end})
				found = true
				break
			}
			_, sz := utf8.DecodeLastRuneInString(s[start:end])
			end -= sz
		}
		if !found {
			return w.unkToken(s, out[:n0])
		}
		start = end
	}
	return out, nil
}

// --- WordLevel ---

type wordLevel struct {
	*vocabulary
	unk string
}

func (w *wordLevel) tokenize(s string, out []token, sc *scratch) ([]token, error) {
	if id, ok := w.ids[s]; ok {
		tok, _ := w.idToToken(id)
		if tok != s {
			tok = strings.Clone(s)
		}
		return append(out, token{id, tok, 0, len(s)}), nil
	}
	if id, ok := w.ids[w.unk]; ok {
		return append(out, token{id, w.unk, 0, len(s)}), nil
	}
	return out, fmt.Errorf("tokenize: WordLevel: unk token %q is not in the vocabulary", w.unk)
}

// buildModel reads the model object of tokenizer.json.
func buildModel(raw json.RawMessage) (model, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	typ := head.Type
	if typ == "" {
		typ = guessModelType(raw)
	}
	switch typ {
	case "WordPiece":
		var c struct {
			Vocab    json.RawMessage `json:"vocab"`
			Unk      *string         `json:"unk_token"`
			Prefix   *string         `json:"continuing_subword_prefix"`
			MaxChars *int            `json:"max_input_chars_per_word"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("WordPiece: %w", err)
		}
		m, err := decodeVocabMap(c.Vocab)
		if err != nil {
			return nil, fmt.Errorf("WordPiece vocab: %w", err)
		}
		v, err := newVocabulary(m)
		if err != nil {
			return nil, fmt.Errorf("WordPiece vocab: %w", err)
		}
		unk, prefix, maxChars := "[UNK]", "##", 100
		if c.Unk != nil {
			unk = *c.Unk
		}
		if c.Prefix != nil {
			prefix = *c.Prefix
		}
		if c.MaxChars != nil {
			maxChars = *c.MaxChars
		}
		return newWordPiece(v, unk, prefix, maxChars), nil
	case "WordLevel":
		var c struct {
			Vocab json.RawMessage `json:"vocab"`
			Unk   *string         `json:"unk_token"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("WordLevel: %w", err)
		}
		m, err := decodeVocabMap(c.Vocab)
		if err != nil {
			return nil, fmt.Errorf("WordLevel vocab: %w", err)
		}
		v, err := newVocabulary(m)
		if err != nil {
			return nil, fmt.Errorf("WordLevel vocab: %w", err)
		}
		unk := "<unk>"
		if c.Unk != nil {
			unk = *c.Unk
		}
		return &wordLevel{v, unk}, nil
	case "BPE":
		return buildBPE(raw)
	case "Unigram":
		return buildUnigram(raw)
	}
	return nil, fmt.Errorf("unsupported model %q", typ)
}

// guessModelType handles legacy files without "type", in Rust's untagged order.
func guessModelType(raw json.RawMessage) string {
	switch {
	case bytes.Contains(raw, []byte(`"merges"`)):
		return "BPE"
	case bytes.Contains(raw, []byte(`"continuing_subword_prefix"`)) || bytes.Contains(raw, []byte(`"max_input_chars_per_word"`)):
		return "WordPiece"
	case bytes.Contains(raw, []byte(`"unk_id"`)):
		return "Unigram"
	case bytes.Contains(raw, []byte(`"vocab"`)):
		return "WordLevel"
	}
	return ""
}
