package tokenize

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// bpe is the BPE model. Merges are applied lowest rank first, leftmost first on ties, with the
// same priority queue discipline as Rust's Word::merge_all.
type bpe struct {
	*vocabulary
	merges       map[uint64]uint64 // (left<<32 | right) -> (rank<<32 | new id)
	unk          string
	hasUnk       bool
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int32 // id of "<0xXX>", -1 when absent
	runeIDs      []int32    // id of the one-character token, for small runes; -1 when absent
}

const runeIDsSize = 0x800

func buildBPE(c *modelJSON) (model, error) {
	if !c.Vocab.set || c.Vocab.m == nil {
		return nil, fmt.Errorf("BPE: missing vocab")
	}
	if !c.Merges.set {
		return nil, fmt.Errorf("BPE: missing merges")
	}
	if c.Dropout != nil && (*c.Dropout < 0 || *c.Dropout > 1) {
		return nil, fmt.Errorf("BPE: dropout must be between 0 and 1")
	}
	m := c.Vocab.m
	v, err := newVocabulary(m)
	if err != nil {
		return nil, fmt.Errorf("BPE vocab: %w", err)
	}
	pairs := c.Merges.pairs
	b := &bpe{vocabulary: v, merges: make(map[uint64]uint64, len(pairs))}
	if c.UnkToken != nil {
		b.unk, b.hasUnk = *c.UnkToken, true
	}
	if c.Prefix != nil {
		b.prefix = *c.Prefix
	}
	if c.Suffix != nil {
		b.suffix = *c.Suffix
	}
	b.fuseUnk = boolOr(c.FuseUnk, false)
	b.byteFallback = boolOr(c.ByteFallback, false)
	b.ignoreMerges = boolOr(c.IgnoreMerges, false)

	for rank, p := range pairs {
		a, ok1 := m[p[0]]
		bb, ok2 := m[p[1]]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("BPE merges: token %q of merge %d is not in the vocabulary", missing(m, p), rank)
		}
		if len(p[1]) < len(b.prefix) {
			return nil, fmt.Errorf("BPE merges: token %q is shorter than the continuing subword prefix", p[1])
		}
		merged := p[0] + p[1][len(b.prefix):]
		id, ok := m[merged]
		if !ok {
			return nil, fmt.Errorf("BPE merges: merged token %q of merge %d is not in the vocabulary", merged, rank)
		}
		b.merges[uint64(a)<<32|uint64(bb)] = uint64(rank)<<32 | uint64(id)
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := m[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteIDs[i] = id
		}
	}
	b.runeIDs = make([]int32, runeIDsSize)
	for r := range b.runeIDs {
		b.runeIDs[r] = -1
		if id, ok := m[string(rune(r))]; ok && (r < 0xD800 || r > 0xDFFF) {
			b.runeIDs[r] = id
		}
	}
	return b, nil
}

func missing(m map[string]int32, p [2]string) string {
	if _, ok := m[p[0]]; !ok {
		return p[0]
	}
	return p[1]
}

// symbol is one element of a word being merged.
type symbol struct {
	id         int32
	prev, next int32
	len        int32
}

type mergeItem struct {
	rank uint32
	pos  int32
	id   int32
}

// mergeHeap is a binary min-heap on (rank, pos).
type mergeHeap []mergeItem

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeHeap) push(x mergeItem) {
	*h = append(*h, x)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *mergeHeap) pop() mergeItem {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a.less(r, l) {
			m = r
		}
		if !a.less(m, i) {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

func (b *bpe) lookup(s string, first, last bool, buf *[]byte) (int32, bool) {
	if b.prefix == "" && b.suffix == "" {
		if len(s) <= 2 {
			if r, _ := utf8.DecodeRuneInString(s); r < runeIDsSize {
				id := b.runeIDs[r]
				return id, id >= 0
			}
		}
		id, ok := b.ids[s]
		return id, ok
	}
	k := (*buf)[:0]
	if !first {
		k = append(k, b.prefix...)
	}
	k = append(k, s...)
	if last {
		k = append(k, b.suffix...)
	}
	*buf = k
	id, ok := b.ids[string(k)]
	return id, ok
}

func (b *bpe) tokenize(s string, out []token, sc *scratch) ([]token, error) {
	if s == "" {
		return out, nil
	}
	if b.ignoreMerges {
		if id, ok := b.ids[s]; ok {
			tok, _ := b.idToToken(id)
			if tok != s {
				tok = strings.Clone(s)
			}
			return append(out, token{id, tok, 0, len(s)}), nil
		}
	}
	cache := sc.bpeCacheFor(b)
	if hit, ok := cache[s]; ok {
		return b.emit(hit, out)
	}
	syms := sc.syms[:0]
	defer func() { sc.syms = syms[:0] }()
	add := func(id int32, n int) {
		k := int32(len(syms))
		prev := int32(-1)
		if k > 0 {
			syms[k-1].next = k
			prev = k - 1
		}
		syms = append(syms, symbol{id, prev, -1, int32(n)})
	}
	var keyBuf []byte
	unkID, unkLen, hasPending := int32(0), 0, false
	for i := 0; i < len(s); {
		_, n := decodeAt(s, i)
		first, last := i == 0, i+n == len(s)
		if id, ok := b.lookup(s[i:i+n], first, last, &keyBuf); ok {
			if hasPending {
				add(unkID, unkLen)
				hasPending = false
			}
			add(id, n)
			i += n
			continue
		}
		if b.byteFallback {
			// The bytes of the looked-up string, prefix and suffix included, as in Rust.
			key := s[i : i+n]
			if b.prefix != "" || b.suffix != "" {
				key = string(keyBuf)
			}
			all := true
			for k := 0; k < len(key); k++ {
				if b.byteIDs[key[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := 0; k < len(key); k++ {
					add(b.byteIDs[key[k]], 1)
				}
				i += n
				continue
			}
		}
		if b.hasUnk {
			id, ok := b.ids[b.unk]
			if !ok {
				return out, fmt.Errorf("tokenize: BPE: unk token %q is not in the vocabulary", b.unk)
			}
			switch {
			case hasPending && b.fuseUnk:
				unkLen += n
			case hasPending:
				add(unkID, unkLen)
				unkID, unkLen = id, n
			default:
				unkID, unkLen, hasPending = id, n, true
			}
		}
		i += n
	}
	if hasPending {
		add(unkID, unkLen)
	}
	syms = b.mergeAll(syms, sc)
	word := make([]cachedSym, 0, len(syms))
	for _, sy := range syms {
		if sy.len != 0 {
			word = append(word, cachedSym{sy.id, sy.len})
		}
	}
	if len(s) < bpeCacheMaxWord && len(cache) < bpeCacheSize {
		cache[strings.Clone(s)] = word
	}
	return b.emit(word, out)
}

func (b *bpe) emit(word []cachedSym, out []token) ([]token, error) {
	pos := 0
	for _, sy := range word {
		tok, ok := b.idToToken(sy.id)
		if !ok {
			return out, fmt.Errorf("tokenize: BPE: id %d has no token", sy.id)
		}
		out = append(out, token{sy.id, tok, pos, pos + int(sy.len)})
		pos += int(sy.len)
	}
	return out, nil
}

// The word cache mirrors Rust's per-thread BPE cache: it lives in the pooled scratch (so each
// goroutine has its own and no lock is taken), words under 256 bytes, at most 10,000 per model.
// Results are deterministic (dropout is not supported), so caching cannot change them.
const (
	bpeCacheMaxWord = 256
	bpeCacheSize    = 10000
)

type cachedSym struct{ id, len int32 }

func (sc *scratch) bpeCacheFor(b *bpe) map[string][]cachedSym {
	if sc.bpeCaches == nil {
		sc.bpeCaches = map[*bpe]map[string][]cachedSym{}
	}
	c, ok := sc.bpeCaches[b]
	if !ok {
		if len(sc.bpeCaches) >= 8 {
			clear(sc.bpeCaches) // many tokenizers in turn: start over rather than grow
		}
		c = make(map[string][]cachedSym, 1024)
		sc.bpeCaches[b] = c
	}
	return c
}

func (b *bpe) mergeAll(syms []symbol, sc *scratch) []symbol {
	if len(syms) < 2 {
		return syms
	}
	h := sc.heap[:0]
	defer func() { sc.heap = h[:0] }()
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[uint64(syms[i].id)<<32|uint64(syms[i+1].id)]; ok {
			h.push(mergeItem{uint32(m >> 32), int32(i), int32(m)})
		}
	}
	for len(h) > 0 {
		top := h.pop()
		cur := &syms[top.pos]
		if cur.len == 0 || cur.next == -1 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		m, ok := b.merges[uint64(cur.id)<<32|uint64(right.id)]
		if !ok || int32(m) != top.id {
			continue // stale entry
		}
		cur.id = top.id
		cur.len += right.len
		cur.next = right.next
		syms[nextPos].len = 0
		if right.next > -1 && int(right.next) < len(syms) {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			prev := syms[cur.prev]
			if m, ok := b.merges[uint64(prev.id)<<32|uint64(cur.id)]; ok {
				h.push(mergeItem{uint32(m >> 32), cur.prev, int32(m)})
			}
		}
		if next := cur.next; next >= 0 && int(next) < len(syms) {
			if m, ok := b.merges[uint64(cur.id)<<32|uint64(syms[next].id)]; ok {
				h.push(mergeItem{uint32(m >> 32), top.pos, int32(m)})
			}
		}
	}
	return syms
}
