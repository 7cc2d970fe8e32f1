package tokenize

import "fmt"

// Offset is a half-open range [Start, End).
type Offset struct{ Start, End int }

// Encoding is the result of encoding one text or one pair of texts.
type Encoding struct {
	IDs               []int32
	TypeIDs           []int32
	Tokens            []string
	Offsets           []Offset // character (code point) offsets into the original input; specials: 0,0
	ByteOffsets       []Offset // the same spans in UTF-8 bytes of the original input
	SpecialTokensMask []uint8
	AttentionMask     []uint8
	WordIDs           []int // -1 where Python has None
	SequenceIDs       []int // -1 for special and pad tokens, 0 first sequence, 1 pair
	Overflowing       []*Encoding

	// seqRanges is Rust's sequence_ranges map (sequence id -> token range): sequence ids are 0
	// and 1, so a fixed array (by value, copied with the struct) is enough.
	seqRanges seqRanges
	seqBuf    []int // room reserved for SequenceIDs
}

type seqRange struct{ id, start, end int }

type seqRanges struct {
	r [2]seqRange
	n int
}

func (s *seqRanges) all() []seqRange { return s.r[:s.n] }

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// newEncoding allocates an empty encoding with room for n tokens, sharing one backing array per
// element type (full slice expressions keep appends from overlapping).
func newEncoding(n int) *Encoding {
	e := &Encoding{}
	e.reset(n)
	return e
}

func (e *Encoding) reset(n int) {
	i32 := make([]int32, 2*n)
	offs := make([]Offset, 2*n)
	u8 := make([]uint8, 2*n)
	ints := make([]int, 2*n)
	*e = Encoding{
		IDs:               i32[0:0:n],
		TypeIDs:           i32[n : n : 2*n],
		Tokens:            make([]string, 0, n),
		Offsets:           offs[0:0:n],
		ByteOffsets:       offs[n : n : 2*n],
		SpecialTokensMask: u8[0:0:n],
		AttentionMask:     u8[n : n : 2*n],
		WordIDs:           ints[0:0:n],
		seqBuf:            ints[n : n : 2*n],
	}
}

// clear empties e keeping its arrays (scratch encodings).
func (e *Encoding) clear() {
	*e = Encoding{
		IDs: e.IDs[:0], TypeIDs: e.TypeIDs[:0], Tokens: e.Tokens[:0],
		Offsets: e.Offsets[:0], ByteOffsets: e.ByteOffsets[:0],
		SpecialTokensMask: e.SpecialTokensMask[:0], AttentionMask: e.AttentionMask[:0],
		WordIDs: e.WordIDs[:0],
	}
}

func (e *Encoding) setSeqRange(id, start, end int) {
	s := &e.seqRanges
	for i := range s.all() {
		if s.r[i].id == id {
			s.r[i].start, s.r[i].end = start, end
			return
		}
	}
	if s.n < len(s.r) {
		s.r[s.n] = seqRange{id, start, end}
		s.n++
	}
}

// setSequenceID is Rust's set_sequence_id: the whole encoding belongs to sequence id.
func (e *Encoding) setSequenceID(id int) { e.setSeqRange(id, 0, e.Len()) }

func (e *Encoding) setTypeIDs(t int32) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = t
	}
}

func (e *Encoding) clone() *Encoding {
	c := &Encoding{
		IDs:               append([]int32(nil), e.IDs...),
		TypeIDs:           append([]int32(nil), e.TypeIDs...),
		Tokens:            append([]string(nil), e.Tokens...),
		Offsets:           append([]Offset(nil), e.Offsets...),
		ByteOffsets:       append([]Offset(nil), e.ByteOffsets...),
		SpecialTokensMask: append([]uint8(nil), e.SpecialTokensMask...),
		AttentionMask:     append([]uint8(nil), e.AttentionMask...),
		WordIDs:           append([]int(nil), e.WordIDs...),
		seqRanges:         e.seqRanges,
	}
	for _, o := range e.Overflowing {
		c.Overflowing = append(c.Overflowing, o.clone())
	}
	return c
}

// sub copies tokens lo..hi into a new encoding without sequence ranges or overflowing.
func (e *Encoding) sub(lo, hi int) *Encoding {
	return &Encoding{
		IDs:               append([]int32(nil), e.IDs[lo:hi]...),
		TypeIDs:           append([]int32(nil), e.TypeIDs[lo:hi]...),
		Tokens:            append([]string(nil), e.Tokens[lo:hi]...),
		Offsets:           append([]Offset(nil), e.Offsets[lo:hi]...),
		ByteOffsets:       append([]Offset(nil), e.ByteOffsets[lo:hi]...),
		SpecialTokensMask: append([]uint8(nil), e.SpecialTokensMask[lo:hi]...),
		AttentionMask:     append([]uint8(nil), e.AttentionMask[lo:hi]...),
		WordIDs:           append([]int(nil), e.WordIDs[lo:hi]...),
	}
}

// truncate is Rust's Encoding::truncate: keep maxLen tokens, the rest going to overflowing
// windows that overlap by stride tokens.
func (e *Encoding) truncate(maxLen, stride int, left bool) error {
	n := e.Len()
	if maxLen >= n {
		return nil
	}
	if maxLen == 0 {
		old := *e
		*e = Encoding{}
		e.IDs, e.TypeIDs, e.Tokens = []int32{}, []int32{}, []string{}
		e.Offsets, e.ByteOffsets = []Offset{}, []Offset{}
		e.SpecialTokensMask, e.AttentionMask, e.WordIDs = []uint8{}, []uint8{}, []int{}
		e.Overflowing = []*Encoding{&old}
		return nil
	}
	if stride >= maxLen {
		return fmt.Errorf("tokenize: truncation stride %d must be smaller than the maximum length %d (after removing special tokens)", stride, maxLen)
	}
	step := maxLen - stride
	type part struct{ lo, hi int }
	var parts []part
	end := false
	if !left {
		for start := 0; start < n && !end; start += step {
			stop := min(start+maxLen, n)
			end = stop == n
			parts = append(parts, part{start, stop})
		}
	} else {
		for s := n - 1; s >= 0 && !end; s -= step {
			stop := s + 1
			start := max(stop-maxLen, 0)
			if start < stop {
				end = start == 0
				parts = append(parts, part{start, stop})
			}
		}
	}
	first := e.sub(parts[0].lo, parts[0].hi)
	for _, p := range parts[1:] {
		first.Overflowing = append(first.Overflowing, e.sub(p.lo, p.hi))
	}
	*e = *first
	return nil
}

// mergeWith is Rust's merge_with (growing_offsets false): pair is appended to e, and the
// overflowing windows of both are combined.
func (e *Encoding) mergeWith(pair *Encoding) {
	var overflowing []*Encoding
	for _, so := range e.Overflowing {
		n := so.clone()
		n.mergeWith(pair.clone())
		overflowing = append(overflowing, n)
		for _, po := range pair.Overflowing {
			n := so.clone()
			n.mergeWith(po.clone())
			overflowing = append(overflowing, n)
		}
	}
	for _, po := range pair.Overflowing {
		n := e.clone()
		n.mergeWith(po.clone())
		overflowing = append(overflowing, n)
	}
	base := e.Len()
	for _, r := range pair.seqRanges.all() {
		e.setSeqRange(r.id, base+r.start, base+r.end)
	}
	e.IDs = append(e.IDs, pair.IDs...)
	e.TypeIDs = append(e.TypeIDs, pair.TypeIDs...)
	e.Tokens = append(e.Tokens, pair.Tokens...)
	e.WordIDs = append(e.WordIDs, pair.WordIDs...)
	e.Offsets = append(e.Offsets, pair.Offsets...)
	e.ByteOffsets = append(e.ByteOffsets, pair.ByteOffsets...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, pair.SpecialTokensMask...)
	e.AttentionMask = append(e.AttentionMask, pair.AttentionMask...)
	e.Overflowing = overflowing
}

// mergeEncodings is Encoding::merge of a list.
func mergeEncodings(list []*Encoding) *Encoding {
	total, overflow := 0, false
	for _, e := range list {
		total += e.Len()
		overflow = overflow || len(e.Overflowing) > 0
	}
	if overflow {
		out := &Encoding{}
		for _, e := range list {
			out.mergeWith(e)
		}
		return out
	}
	// No overflowing windows: one exact allocation.
	out := newEncoding(total)
	for _, e := range list {
		base := out.Len()
		for _, r := range e.seqRanges.all() {
			out.setSeqRange(r.id, base+r.start, base+r.end)
		}
		out.IDs = append(out.IDs, e.IDs...)
		out.TypeIDs = append(out.TypeIDs, e.TypeIDs...)
		out.Tokens = append(out.Tokens, e.Tokens...)
		out.WordIDs = append(out.WordIDs, e.WordIDs...)
		out.Offsets = append(out.Offsets, e.Offsets...)
		out.ByteOffsets = append(out.ByteOffsets, e.ByteOffsets...)
		out.SpecialTokensMask = append(out.SpecialTokensMask, e.SpecialTokensMask...)
		out.AttentionMask = append(out.AttentionMask, e.AttentionMask...)
	}
	return out
}

// pad is Rust's Encoding::pad.
func (e *Encoding) pad(target int, p *Padding) {
	for _, o := range e.Overflowing {
		o.pad(target, p)
	}
	n := e.Len()
	if n >= target {
		return
	}
	k := target - n
	// One bulk allocation of the padded size (the arrays were allocated to the exact length).
	g := newEncoding(target)
	g.seqRanges, g.Overflowing = e.seqRanges, e.Overflowing
	at := 0
	if p.Direction == Left {
		at = k
		for i := range g.seqRanges.all() {
			g.seqRanges.r[i].start += k
			g.seqRanges.r[i].end += k
		}
	}
	g.IDs = g.IDs[:target]
	g.TypeIDs = g.TypeIDs[:target]
	g.Tokens = g.Tokens[:target]
	g.WordIDs = g.WordIDs[:target]
	g.AttentionMask = g.AttentionMask[:target]
	g.SpecialTokensMask = g.SpecialTokensMask[:target]
	g.Offsets = g.Offsets[:target]
	g.ByteOffsets = g.ByteOffsets[:target]
	copy(g.IDs[at:], e.IDs)
	copy(g.TypeIDs[at:], e.TypeIDs)
	copy(g.Tokens[at:], e.Tokens)
	copy(g.WordIDs[at:], e.WordIDs)
	copy(g.AttentionMask[at:], e.AttentionMask)
	copy(g.SpecialTokensMask[at:], e.SpecialTokensMask)
	copy(g.Offsets[at:], e.Offsets)
	copy(g.ByteOffsets[at:], e.ByteOffsets)
	lo, hi := n, target // the padded positions
	if p.Direction == Left {
		lo, hi = 0, k
	}
	for i := lo; i < hi; i++ {
		g.IDs[i], g.TypeIDs[i], g.Tokens[i], g.WordIDs[i] = p.PadID, p.PadTypeID, p.PadToken, -1
		g.AttentionMask[i], g.SpecialTokensMask[i] = 0, 1
	}
	*e = *g
}

// padEncodings is pad_encodings: to the fixed length or the longest, rounded up to a multiple.
func padEncodings(list []*Encoding, p *Padding) {
	if len(list) == 0 {
		return
	}
	target := p.Length
	if p.Strategy == PadBatchLongest {
		target = 0
		for _, e := range list {
			target = max(target, e.Len())
		}
	}
	if m := p.PadToMultipleOf; m > 0 && target%m > 0 {
		target += m - target%m
	}
	for _, e := range list {
		e.pad(target, p)
	}
}

// finish computes SequenceIDs from the sequence ranges (Rust's get_sequence_ids), recursively.
func (e *Encoding) finish() {
	n := e.Len()
	if cap(e.seqBuf) >= n {
		e.SequenceIDs = e.seqBuf[:n]
	} else {
		e.SequenceIDs = make([]int, n)
	}
	e.seqBuf = nil
	for i := range e.SequenceIDs {
		e.SequenceIDs[i] = -1
	}
	nseq := e.seqRanges.n
	if nseq == 0 {
		nseq = 1
	}
	for id := 0; id < nseq; id++ {
		lo, hi := 0, n
		for _, r := range e.seqRanges.all() {
			if r.id == id {
				lo, hi = r.start, r.end
			}
		}
		for i := max(lo, 0); i < min(hi, n); i++ {
			e.SequenceIDs[i] = id
		}
	}
	for _, o := range e.Overflowing {
		o.finish()
	}
}
