package tokenize

import "unicode"

// Character properties, one uint32 per code point: flag bits, the Unicode 9.0 canonical
// combining class and the script id of scripts.rs. The Rust library takes its character classes
// from several crates at several Unicode versions; unicode_tables.go (generated from the
// reference itself) records where they differ from Go's Unicode 15.0 tables, and this file folds
// both into a two-stage lookup table so that every class test is two array loads.

type runeRange struct{ lo, hi rune }

type cccRange struct {
	lo, hi rune
	ccc    uint8
}

type scriptRange struct {
	lo, hi rune
	script uint8
}

const (
	pLetter         = 1 << iota // onig \p{L}
	pNumber                     // onig \p{N}
	pSpace                      // White_Space: Rust char::is_whitespace, onig and regex \s
	pNumeric                    // Rust char::is_numeric
	pPunct                      // ASCII or unicode_categories punctuation
	pBertRemoved                // dropped by BertNormalizer clean_text
	pBertSpace                  // turned into ' ' by BertNormalizer clean_text
	pChinese                    // BertNormalizer CJK ranges
	pNonSpacingMark             // unicode_categories Mn
	pCombiningMark              // unicode-normalization-alignments is_combining_mark
	pRegexWord                  // \w of the Rust regex crate
	pOnigWord                   // onig \w
	pOnigDigit                  // onig \d
	pNoCanonDecomp              // x/text decomposes it, Unicode 9.0 did not (canonical)
	pNoCompatDecomp             // same, compatibility
	pLowerException             // lowercase differs from unicode.ToLower

	cccShift    = 16
	scriptShift = 24
)

const blockBits = 7

type propTable struct {
	index  []uint16
	blocks []uint32
}

// ptab is built once at package initialisation (a few milliseconds) and never written again.
var ptab = buildPropTable()

// asciiProps is the first block of ptab, for byte loops.
var asciiProps = func() (a [128]uint32) {
	copy(a[:], ptab.blocks[:128])
	return a
}()

// props returns the property word of r (0 for invalid code points).
func props(r rune) uint32 {
	if uint32(r) > unicode.MaxRune {
		return 0
	}
	return ptab.blocks[int(ptab.index[r>>blockBits])<<blockBits|int(r&(1<<blockBits-1))]
}

func hasProp(r rune, p uint32) bool { return props(r)&p != 0 }

func ccc(r rune) uint8 { return uint8(props(r) >> cccShift) }

func buildPropTable() *propTable {
	flat := make([]uint32, unicode.MaxRune+1)
	set := func(tabs []*unicode.RangeTable, bit uint32) {
		for _, t := range tabs {
			for _, r := range t.R16 {
				for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
					flat[c] |= bit
				}
			}
			for _, r := range t.R32 {
				for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
					flat[c] |= bit
				}
			}
		}
	}
	apply := func(rs []runeRange, bit uint32, on bool) {
		for _, r := range rs {
			for c := r.lo; c <= r.hi; c++ {
				if on {
					flat[c] |= bit
				} else {
					flat[c] &^= bit
				}
			}
		}
	}
	diff := func(base []*unicode.RangeTable, add, del []runeRange, bit uint32) {
		set(base, bit)
		apply(add, bit, true)
		apply(del, bit, false)
	}
	// The bases must stay identical to scripts/tokenizer-goldens/gentables.
	alpha := []*unicode.RangeTable{unicode.L, unicode.Nl, unicode.Other_Alphabetic}
	word := append(append([]*unicode.RangeTable{}, alpha...), unicode.M, unicode.Nd, unicode.Pc, unicode.Join_Control)
	asciiPunct := &unicode.RangeTable{R16: []unicode.Range16{{Lo: 0x21, Hi: 0x2f, Stride: 1}, {Lo: 0x3a, Hi: 0x40, Stride: 1}, {Lo: 0x5b, Hi: 0x60, Stride: 1}, {Lo: 0x7b, Hi: 0x7e, Stride: 1}}}
	diff([]*unicode.RangeTable{unicode.L}, onigLetterAdd, onigLetterDel, pLetter)
	diff([]*unicode.RangeTable{unicode.N}, onigNumberAdd, onigNumberDel, pNumber)
	set([]*unicode.RangeTable{unicode.White_Space}, pSpace)
	diff([]*unicode.RangeTable{unicode.N}, rustNumericAdd, rustNumericDel, pNumeric)
	diff([]*unicode.RangeTable{unicode.P, asciiPunct}, punctAdd, punctDel, pPunct)
	diff([]*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Co}, bertRemovedAdd, bertRemovedDel, pBertRemoved)
	flat[0] |= pBertRemoved
	apply(bertSpaceRanges, pBertSpace, true)
	apply(bertChineseRanges, pChinese, true)
	diff([]*unicode.RangeTable{unicode.Mn}, nonSpacingMarkAdd, nonSpacingMarkDel, pNonSpacingMark)
	diff([]*unicode.RangeTable{unicode.M}, combiningMarkAdd, combiningMarkDel, pCombiningMark)
	diff(word, regexWordAdd, regexWordDel, pRegexWord)
	diff(word, onigWordAdd, onigWordDel, pOnigWord)
	diff([]*unicode.RangeTable{unicode.Nd}, onigDigitAdd, onigDigitDel, pOnigDigit)
	apply(nfdExcludedRanges, pNoCanonDecomp, true)
	apply(nfkdExcludedRanges, pNoCompatDecomp, true)
	for c := range lowercaseExceptions {
		flat[c] |= pLowerException
	}
	for _, r := range cccRanges {
		for c := r.lo; c <= r.hi; c++ {
			flat[c] |= uint32(r.ccc) << cccShift
		}
	}
	for _, r := range scriptRanges {
		for c := r.lo; c <= r.hi; c++ {
			flat[c] |= uint32(r.script) << scriptShift
		}
	}

	// Two stages: deduplicate blocks of 128 code points.
	const bs = 1 << blockBits
	t := &propTable{index: make([]uint16, len(flat)/bs)}
	seen := map[[bs]uint32]uint16{}
	for b := 0; b < len(flat)/bs; b++ {
		var blk [bs]uint32
		copy(blk[:], flat[b*bs:])
		id, ok := seen[blk]
		if !ok {
			id = uint16(len(t.blocks) / bs)
			seen[blk] = id
			t.blocks = append(t.blocks, blk[:]...)
		}
		t.index[b] = id
	}
	return t
}

type categoryRange struct {
	lo, hi rune
	cat    string
}
