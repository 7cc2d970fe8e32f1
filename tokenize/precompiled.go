package tokenize

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiled is SentencePiece's precompiled_charsmap normalizer (T5, XLM-R, ALBERT...): a
// double-array trie from byte strings to offsets into a block of NUL-terminated replacements.
// It follows spm_precompiled and tokenizers' Precompiled::normalize, quirks included: a grapheme
// shorter than 6 bytes is replaced as a whole by the replacement of its shortest prefix in the
// trie, otherwise each character is looked up alone.
type precompiled struct {
	trie       []uint32
	normalized []byte
}

func newPrecompiled(b64 string) (*precompiled, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("Precompiled: precompiled_charsmap: %w", err)
	}
	if len(data) < 4 {
		return nil, errors.New("Precompiled: precompiled_charsmap too short")
	}
	size := int(binary.LittleEndian.Uint32(data))
	n := size / 4
	if n == 0 || 4+n*4 > len(data) {
		return nil, errors.New("Precompiled: bad trie size in precompiled_charsmap")
	}
	p := &precompiled{trie: make([]uint32, n)}
	for i := range p.trie {
		p.trie[i] = binary.LittleEndian.Uint32(data[4+4*i:])
	}
	p.normalized = data[4+4*n:]
	if !utf8.Valid(p.normalized) {
		return nil, errors.New("Precompiled: replacements are not valid UTF-8")
	}
	return p, nil
}

func unitHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func unitValue(u uint32) uint32  { return u & (1<<31 - 1) }
func unitLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// firstMatch is common_prefix_search(key)[0]: the value of the shortest prefix of key in the trie.
func (p *precompiled) firstMatch(key string) (int, bool) {
	pos := uint32(0)
	unit := p.trie[0]
	pos ^= unitOffset(unit)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if int(pos) >= len(p.trie) {
			return 0, false
		}
		unit = p.trie[pos]
		if unitLabel(unit) != uint32(c) {
			return 0, false
		}
		pos ^= unitOffset(unit)
		if int(pos) >= len(p.trie) {
			return 0, false
		}
		if unitHasLeaf(unit) {
			return int(unitValue(p.trie[pos])), true
		}
	}
	return 0, false
}

// transform returns the replacement of chunk, if any.
func (p *precompiled) transform(chunk string) (string, bool) {
	idx, ok := p.firstMatch(chunk)
	if !ok {
		return "", false
	}
	if idx > len(p.normalized) {
		return "", false
	}
	end := idx
	for end < len(p.normalized) && p.normalized[end] != 0 {
		end++
	}
	r := p.normalized[idx:end]
	if !utf8.Valid(r) {
		return "", false
	}
	return string(r), true
}

// appendReplace is spm's replace(): new characters replace the old ones one for one, extra new
// characters are insertions, and the last new character absorbs any extra old ones.
func appendReplace(dest []change, old, repl string) []change {
	oldCount := int32(utf8.RuneCountInString(old))
	newCount := int32(utf8.RuneCountInString(repl))
	start := len(dest)
	for _, c := range repl {
		dest = append(dest, change{c, 0})
	}
	diff := newCount - oldCount
	switch {
	case diff > 0:
		for i := len(dest) - 1; i >= start && diff > 0; i-- {
			dest[i].c = 1
			diff--
		}
	case diff < 0:
		if len(dest) > 0 {
			dest[len(dest)-1].c += diff
		}
	}
	return dest
}

func (p *precompiled) normalize(n *nstr, _ *scratch) error {
	dest := make([]change, 0, len(n.s))
	modified := false
	state := -1
	rest := n.s
	for len(rest) > 0 {
		var g string
		g, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if len(g) < 6 {
			if norm, ok := p.transform(g); ok {
				modified = true
				dest = appendReplace(dest, g, norm)
				continue
			}
		}
		for i, c := range g {
			part := g[i : i+utf8.RuneLen(c)]
			if norm, ok := p.transform(part); ok {
				modified = true
				dest = appendReplace(dest, part, norm)
			} else {
				dest = append(dest, change{c, 0})
			}
		}
	}
	if !modified {
		return nil
	}
	return n.transformAll(dest, 0)
}
