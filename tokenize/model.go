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

// modelJSON is the model object of tokenizer.json, decoded in the same pass as the document (the
// vocabulary and merges are most of a large file).
type modelJSON struct {
	Type         string     `json:"type"`
	Vocab        vocabJSON  `json:"vocab"`
	Merges       mergesJSON `json:"merges"`
	UnkToken     *string    `json:"unk_token"`
	UnkID        *int       `json:"unk_id"`
	Prefix       *string    `json:"continuing_subword_prefix"`
	Suffix       *string    `json:"end_of_word_suffix"`
	MaxChars     *int       `json:"max_input_chars_per_word"`
	FuseUnk      *bool      `json:"fuse_unk"`
	ByteFallback *bool      `json:"byte_fallback"`
	IgnoreMerges *bool      `json:"ignore_merges"`
	Dropout      *float64   `json:"dropout"`
}

// vocabJSON is {"token": id} (WordPiece, WordLevel, BPE) or [["piece", score], ...] (Unigram).
type vocabJSON struct {
	set    bool
	m      map[string]int32
	pieces []string
	scores []float64
}

func (v *vocabJSON) UnmarshalJSON(b []byte) error {
	v.set = true
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var entries [][2]any
		if err := json.Unmarshal(b, &entries); err != nil {
			return err
		}
		v.pieces = make([]string, len(entries))
		v.scores = make([]float64, len(entries))
		for i, e := range entries {
			p, ok1 := e[0].(string)
			sc, ok2 := e[1].(float64)
			if !ok1 || !ok2 {
				return fmt.Errorf("vocab[%d] is not [piece, score]", i)
			}
			v.pieces[i], v.scores[i] = p, sc
		}
		return nil
	}
	return json.Unmarshal(b, &v.m)
}

// mergesJSON is ["a b", ...] or [["a", "b"], ...].
type mergesJSON struct {
	set   bool
	pairs [][2]string
}

func (m *mergesJSON) UnmarshalJSON(b []byte) error {
	m.set = true
	var pairs [][]string
	if err := json.Unmarshal(b, &pairs); err == nil {
		m.pairs = make([][2]string, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return fmt.Errorf("merge %d has %d tokens", i, len(p))
			}
			m.pairs[i] = [2]string{p[0], p[1]}
		}
		return nil
	}
	var strs []string
	if err := json.Unmarshal(b, &strs); err != nil {
		return err
	}
	m.pairs = make([][2]string, 0, len(strs))
	for i, s := range strs {
		if strings.HasPrefix(s, "#version") {
			continue
		}
		a, rest, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(rest, " ") {
			return fmt.Errorf("merge %d (%q) is not two tokens separated by a space", i, s)
		}
		m.pairs = append(m.pairs, [2]string{a, rest})
	}
	return nil
}

// buildModel builds the model of tokenizer.json.
func buildModel(c *modelJSON) (model, error) {
	typ := c.Type
	if typ == "" {
		typ = guessModelType(c)
	}
	needMap := func(name string) (*vocabulary, error) {
		if c.Vocab.m == nil {
			return nil, fmt.Errorf("%s: vocab must be an object of token ids", name)
		}
		v, err := newVocabulary(c.Vocab.m)
		if err != nil {
			return nil, fmt.Errorf("%s vocab: %w", name, err)
		}
		return v, nil
	}
	switch typ {
	case "WordPiece":
		v, err := needMap("WordPiece")
		if err != nil {
			return nil, err
		}
		unk, prefix, maxChars := "[UNK]", "##", 100
		if c.UnkToken != nil {
			unk = *c.UnkToken
		}
		if c.Prefix != nil {
			prefix = *c.Prefix
		}
		if c.MaxChars != nil {
			maxChars = *c.MaxChars
		}
		return newWordPiece(v, unk, prefix, maxChars), nil
	case "WordLevel":
		v, err := needMap("WordLevel")
		if err != nil {
			return nil, err
		}
		unk := "<unk>"
		if c.UnkToken != nil {
			unk = *c.UnkToken
		}
		return &wordLevel{v, unk}, nil
	case "BPE":
		return buildBPE(c)
	case "Unigram":
		return buildUnigram(c)
	}
	return nil, fmt.Errorf("unsupported model %q", typ)
}

// guessModelType handles legacy files without "type", in Rust's untagged order.
func guessModelType(c *modelJSON) string {
	switch {
	case c.Merges.set:
		return "BPE"
	case c.Prefix != nil || c.MaxChars != nil:
		return "WordPiece"
	case c.UnkID != nil || c.Vocab.pieces != nil:
		return "Unigram"
	case c.Vocab.set:
		return "WordLevel"
	}
	return ""
}
