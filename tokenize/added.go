package tokenize

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedVocab is Rust's AddedVocabulary: tokens matched in the text before the model runs, the
// non-normalized ones on the raw text, the normalized ones on the normalized pieces.
type addedVocab struct {
	byContent map[string]int32
	byID      map[int32]addedToken
	normCache map[int32]string // normalized content, when it differs
	special   map[string]bool
	raw, norm *matcher
}

// matcher finds leftmost-longest non-overlapping occurrences of a set of strings (the daachorse
// LeftmostLongest automaton of Rust, as a byte trie: added tokens are few and short).
type matcher struct {
	trie  byteTrie
	first [256]bool
}

func newMatcher(pats map[string]int32) *matcher {
	m := &matcher{trie: byteTrie{next: map[uint64]int32{}, leaf: []int32{-1}}}
	for p, id := range pats {
		m.trie.insert(p, id)
		m.first[p[0]] = true
	}
	return m
}

// next returns the leftmost-longest match at or after from.
func (m *matcher) next(s string, from int) (start, end int, id int32, ok bool) {
	for i := from; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		node, best := int32(0), -1
		var bestID int32
		for j := i; j < len(s); j++ {
			child, found := m.trie.next[uint64(node)<<8|uint64(s[j])]
			if !found {
				break
			}
			node = child
			if lid := m.trie.leaf[node]; lid >= 0 {
				best, bestID = j+1, lid
			}
		}
		if best >= 0 {
			return i, best, bestID, true
		}
	}
	return 0, 0, 0, false
}

func newAddedVocab() *addedVocab {
	return &addedVocab{
		byContent: map[string]int32{},
		byID:      map[int32]addedToken{},
		normCache: map[int32]string{},
		special:   map[string]bool{},
	}
}

// add is AddedVocabulary::add_tokens as used when loading tokenizer.json: ids come from the
// existing vocabularies, or are assigned after the largest one (the "id" of the file is not
// used, as in Rust).
func (a *addedVocab) add(tokens []addedToken, m model, norm normalizer) error {
	nextID := int32(m.vocabSize())
	if len(a.byID) > 0 {
		maxID := int32(-1)
		for id := range a.byID {
			maxID = max(maxID, id)
		}
		if maxID >= int32(m.vocabSize()) || m.vocabSize() == 0 {
			nextID = maxID + 1
		}
	}
	for _, t := range tokens {
		if t.Content == "" {
			continue
		}
		if id, ok := a.byContent[t.Content]; ok && a.byID[id] == t {
			continue
		}
		id, ok := a.byContent[t.Content]
		if !ok {
			id, ok = m.tokenToID(t.Content)
		}
		if !ok {
			id = nextID
			nextID++
		}
		if t.Normalized && norm != nil {
			n := newNstr(t.Content, nil)
			if err := norm.normalize(&n, &scratch{}); err != nil {
				return fmt.Errorf("added token %q: %w", t.Content, err)
			}
			if n.s != t.Content {
				a.normCache[id] = n.s
			}
		}
		a.byContent[t.Content] = id
		if t.Special {
			a.special[t.Content] = true
		}
		a.byID[id] = t
	}
	return a.refresh()
}

func (a *addedVocab) refresh() error {
	raw, norm := map[string]int32{}, map[string]int32{}
	ids := make([]int32, 0, len(a.byID))
	for id := range a.byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		t := a.byID[id]
		target, pat := raw, t.Content
		if t.Normalized {
			target = norm
			if c, ok := a.normCache[id]; ok {
				pat = c
			}
		}
		if pat == "" {
			continue
		}
		if _, dup := target[pat]; dup {
			// daachorse refuses duplicate patterns, so Rust fails to load.
			return fmt.Errorf("added tokens: duplicate pattern %q", pat)
		}
		target[pat] = id
	}
	a.raw, a.norm = nil, nil
	if len(raw) > 0 {
		a.raw = newMatcher(raw)
	}
	if len(norm) > 0 {
		a.norm = newMatcher(norm)
	}
	return nil
}

// tokenString is simple_id_to_token: the string the decoder sees for an added token.
func (a *addedVocab) tokenString(id int32) (string, bool) {
	t, ok := a.byID[id]
	if !ok {
		return "", false
	}
	if c, ok := a.normCache[id]; ok {
		return c, true
	}
	return t.Content, true
}

// findSplits is find_matches: pieces covering s, with the added token id for matches.
func (a *addedVocab) findSplits(s string, m *matcher, out []addedSplit) []addedSplit {
	if s == "" {
		return append(out, addedSplit{0, 0, -1})
	}
	if m == nil {
		return append(out, addedSplit{0, len(s), -1})
	}
	startOffset := 0
	for from := 0; ; {
		start, stop, id, ok := m.next(s, from)
		if !ok {
			break
		}
		from = stop
		t := a.byID[id]
		if t.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.Lstrip {
			start = max(spaceLeftmostAtEnd(s[:start]), startOffset)
		}
		if t.Rstrip {
			stop += spaceRightmostAtStart(s[stop:])
		}
		if startOffset < start {
			out = append(out, addedSplit{startOffset, start, -1})
		}
		out = append(out, addedSplit{start, stop, id})
		startOffset = stop
	}
	if startOffset != len(s) {
		out = append(out, addedSplit{startOffset, len(s), -1})
	}
	return out
}

type addedSplit struct {
	start, end int
	id         int32 // -1: not an added token
}

func endsWithWord(s string) bool {
	if s == "" {
		return false
	}
	c, _ := decodeLast(s)
	return props(c)&pRegexWord != 0
}

func startsWithWord(s string) bool {
	if s == "" {
		return false
	}
	c, _ := decodeAt(s, 0)
	return props(c)&pRegexWord != 0
}

// spaceLeftmostAtEnd is where the trailing whitespace of s starts.
func spaceLeftmostAtEnd(s string) int {
	i := len(s)
	for i > 0 {
		c, n := decodeLast(s[:i])
		if props(c)&pSpace == 0 {
			break
		}
		i -= n
	}
	return i
}

// spaceRightmostAtStart is the length of the leading whitespace of s.
func spaceRightmostAtStart(s string) int {
	i := 0
	for i < len(s) {
		c, n := decodeAt(s, i)
		if props(c)&pSpace == 0 {
			break
		}
		i += n
	}
	return i
}

// splitAdded is split_with_indices on every untokenized piece of p.
func (a *addedVocab) splitAdded(p *pretok, m *matcher, sc *scratch, norm normalizer) error {
	out := sc.splits[:0]
	buf := sc.asplits[:0]
	defer func() { sc.asplits = buf[:0] }()
	for i := range p.splits {
		s := &p.splits[i]
		if s.done {
			out = append(out, *s)
			continue
		}
		n := &s.n // normalized in place: the list is replaced below
		if norm != nil {
			if err := norm.normalize(n, sc); err != nil {
				return err
			}
		}
		buf = a.findSplits(n.s, m, buf[:0])
		for _, sp := range buf {
			piece, err := n.slice(sp.start, sp.end)
			if err != nil {
				return err
			}
			if piece.empty() {
				continue
			}
			ps := pieceFrom(piece)
			if sp.id >= 0 {
				tok := a.byID[sp.id].Content
				if tok != piece.s {
					tok = strings.Clone(piece.s)
				}
				ps.done = true
				ps.tokLo = len(sc.toks)
				sc.toks = append(sc.toks, token{sp.id, tok, 0, len(piece.s)})
				ps.tokHi = len(sc.toks)
			}
			out = append(out, ps)
		}
	}
	sc.splits = p.splits[:0]
	p.splits = out
	return nil
}

func pieceFrom(n nstr) piece { return piece{n: n} }

// parseAddedTokens reads the added_tokens array.
func parseAddedTokens(raw json.RawMessage) ([]addedToken, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var items []struct {
		addedToken
		Normalized *bool `json:"normalized"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("added_tokens: %w", err)
	}
	out := make([]addedToken, len(items))
	for i, it := range items {
		t := it.addedToken
		// AddedToken's serde default for normalized is true.
		t.Normalized = boolOr(it.Normalized, true)
		out[i] = t
	}
	return out, nil
}

func decodeLast(s string) (rune, int) { return utf8.DecodeLastRuneInString(s) }
