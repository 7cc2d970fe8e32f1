package tokenize

import (
	"fmt"
	"math"
	"strings"
)

// unigram is the Unigram model, with the Viterbi search of Rust's encode_optimized (the one the
// library uses): same scores, same tie-breaking (first candidate wins), unknown pieces fused.
type unigram struct {
	pieces       []string
	scores       []float64
	ids          map[string]int32 // last id wins for duplicated pieces, as in Rust
	trie         byteTrie
	minScore     float64
	unkID        int32 // -1: none
	byteFallback bool
	byteIDs      [256]int32
}

const unkPenalty = 10.0

// byteTrie maps byte strings to ids; children are found through one map keyed by node and byte.
type byteTrie struct {
	next map[uint64]int32 // node<<8 | byte -> child node
	leaf []int32          // node -> piece id, -1 when the node ends no piece
}

func (t *byteTrie) insert(key string, id int32) {
	node := int32(0)
	for i := 0; i < len(key); i++ {
		k := uint64(node)<<8 | uint64(key[i])
		child, ok := t.next[k]
		if !ok {
			child = int32(len(t.leaf))
			t.leaf = append(t.leaf, -1)
			t.next[k] = child
		}
		node = child
	}
	t.leaf[node] = id
}

func buildUnigram(c *modelJSON) (model, error) {
	if !c.Vocab.set || c.Vocab.m != nil {
		return nil, fmt.Errorf("Unigram: vocab must be a list of [piece, score]")
	}
	n := len(c.Vocab.pieces)
	u := &unigram{
		pieces:       c.Vocab.pieces,
		scores:       c.Vocab.scores,
		ids:          make(map[string]int32, n),
		trie:         byteTrie{next: map[uint64]int32{}, leaf: []int32{-1}},
		minScore:     math.Inf(1),
		unkID:        -1,
		byteFallback: boolOr(c.ByteFallback, false),
	}
	if n >= 1<<26 {
		return nil, fmt.Errorf("Unigram: vocabulary too large")
	}
	if c.UnkID != nil {
		if n == 0 {
			return nil, fmt.Errorf("Unigram: the vocabulary is empty but at least <unk> is needed")
		}
		if *c.UnkID < 0 || *c.UnkID >= n {
			return nil, fmt.Errorf("Unigram: unk_id %d is larger than the vocabulary", *c.UnkID)
		}
		u.unkID = int32(*c.UnkID)
	}
	for i, p := range u.pieces {
		u.ids[p] = int32(i)
		u.minScore = math.Min(u.minScore, u.scores[i])
	}
	// The trie resolves to the id the map holds (the last duplicate), as Rust does.
	for p, id := range u.ids {
		if p != "" {
			u.trie.insert(p, id)
		}
	}
	for i := range u.byteIDs {
		u.byteIDs[i] = -1
		if id, ok := u.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			u.byteIDs[i] = id
		}
	}
	return u, nil
}

func (u *unigram) tokenToID(tok string) (int32, bool) {
	id, ok := u.ids[tok]
	return id, ok
}

func (u *unigram) idToToken(id int32) (string, bool) {
	if id < 0 || int(id) >= len(u.pieces) {
		return "", false
	}
	return u.pieces[id], true
}

func (u *unigram) vocabSize() int { return len(u.pieces) }

type bestNode struct {
	id       int32
	score    float64
	startsAt int32 // -1: none
}

func (u *unigram) tokenize(s string, out []token, sc *scratch) ([]token, error) {
	if s == "" {
		return out, nil
	}
	unkScore := u.minScore - unkPenalty
	best := make([]bestNode, len(s)+1)
	for i := range best {
		best[i].startsAt = -1
	}
	for start := 0; start < len(s); {
		base := best[start].score
		_, mblen := decodeAt(s, start)
		single := false
		node := int32(0)
		for i := start; i < len(s); i++ {
			child, ok := u.trie.next[uint64(node)<<8|uint64(s[i])]
			if !ok {
				break
			}
			node = child
			id := u.trie.leaf[node]
			if id < 0 {
				continue
			}
			end := i + 1
			t := &best[end]
			cand := u.scores[id] + base
			if t.startsAt < 0 || cand > t.score {
				t.score, t.startsAt, t.id = cand, int32(start), id
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			t := &best[start+mblen]
			cand := unkScore + base
			if t.startsAt < 0 || cand > t.score {
				if u.unkID < 0 {
					return out, fmt.Errorf("tokenize: Unigram: unknown character and no unk_id")
				}
				t.score, t.startsAt, t.id = cand, int32(start), u.unkID
			}
		}
		start += mblen
	}
	// Walk back, fusing consecutive unknown pieces, then emit in order.
	type seg struct {
		start, end int
		id         int32
		unk        bool
	}
	var segs []seg
	for end := len(s); end > 0; {
		n := best[end]
		if n.startsAt < 0 {
			return out, fmt.Errorf("tokenize: Unigram: no segmentation")
		}
		st := int(n.startsAt)
		isUnk := n.id == u.unkID
		if isUnk && len(segs) > 0 && segs[len(segs)-1].unk {
			segs[len(segs)-1].start = st
		} else {
			segs = append(segs, seg{st, end, n.id, isUnk})
		}
		end = st
	}
	for k := len(segs) - 1; k >= 0; k-- {
		g := segs[k]
		piece := s[g.start:g.end]
		id, ok := u.ids[piece]
		if ok {
			out = append(out, token{id, u.pieces[id], g.start, g.end})
			continue
		}
		if u.byteFallback {
			all := true
			for i := 0; i < len(piece); i++ {
				if u.byteIDs[piece[i]] < 0 {
					all = false
					break
				}
			}
			if all {
				for i := 0; i < len(piece); i++ {
					bid := u.byteIDs[piece[i]]
					out = append(out, token{bid, u.pieces[bid], g.start, g.end})
				}
				continue
			}
		}
		if u.unkID < 0 {
			return out, fmt.Errorf("tokenize: Unigram: unknown piece and no unk_id")
		}
		out = append(out, token{u.unkID, strings.Clone(piece), g.start, g.end})
	}
	return out, nil
}
