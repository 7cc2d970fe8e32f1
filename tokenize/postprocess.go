package tokenize

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// postProcessor adds special tokens around one or two encodings (Rust's process_encodings).
type postProcessor interface {
	addedTokens(pair bool) int
	process(encs []*Encoding, addSpecial bool) ([]*Encoding, error)
}

type specialTok struct {
	tok string
	id  int32
}

// specialEncoding is an encoding of special tokens: type t, no word, offsets 0,0, mask 1.
func specialEncoding(ids []int32, toks []string, t int32) *Encoding {
	e := newEncoding(len(ids))
	for i := range ids {
		e.IDs = append(e.IDs, ids[i])
		e.TypeIDs = append(e.TypeIDs, t)
		e.Tokens = append(e.Tokens, toks[i])
		e.Offsets = append(e.Offsets, Offset{})
		e.ByteOffsets = append(e.ByteOffsets, Offset{})
		e.SpecialTokensMask = append(e.SpecialTokensMask, 1)
		e.AttentionMask = append(e.AttentionMask, 1)
		e.WordIDs = append(e.WordIDs, -1)
	}
	return e
}

// wrapSpecial builds before + e + after (type ids given), with sequence range seq over e.
func wrapSpecial(e *Encoding, before, after []specialTok, tBefore, tMid, tAfter int32, seq int, keepTypes bool) *Encoding {
	out := newEncoding(e.Len() + len(before) + len(after))
	add := func(s *Encoding) {
		out.IDs = append(out.IDs, s.IDs...)
		out.TypeIDs = append(out.TypeIDs, s.TypeIDs...)
		out.Tokens = append(out.Tokens, s.Tokens...)
		out.Offsets = append(out.Offsets, s.Offsets...)
		out.ByteOffsets = append(out.ByteOffsets, s.ByteOffsets...)
		out.SpecialTokensMask = append(out.SpecialTokensMask, s.SpecialTokensMask...)
		out.AttentionMask = append(out.AttentionMask, s.AttentionMask...)
		out.WordIDs = append(out.WordIDs, s.WordIDs...)
	}
	sp := func(ts []specialTok, t int32) {
		for _, s := range ts {
			add(specialEncoding([]int32{s.id}, []string{s.tok}, t))
		}
	}
	sp(before, tBefore)
	mid := len(out.IDs)
	add(e)
	for i := mid; i < len(out.IDs); i++ {
		out.SpecialTokensMask[i] = 0
		out.AttentionMask[i] = 1
		if !keepTypes {
			out.TypeIDs[i] = tMid
		}
	}
	sp(after, tAfter)
	out.setSeqRange(seq, mid, mid+e.Len())
	return out
}

// bertProcessing: [CLS] A [SEP] (B [SEP]).
type bertProcessing struct{ sep, cls specialTok }

func (bertProcessing) addedTokens(pair bool) int {
	if pair {
		return 3
	}
	return 2
}

func (b bertProcessing) process(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	if !addSpecial {
		return encs, nil
	}
	out := make([]*Encoding, len(encs))
	for i, e := range encs {
		wrap := func(e *Encoding) *Encoding {
			if i == 0 {
				return wrapSpecial(e, []specialTok{b.cls}, []specialTok{b.sep}, 0, 0, 0, 0, true)
			}
			return wrapSpecial(e, nil, []specialTok{b.sep}, 0, 0, 1, 1, true)
		}
		w := wrap(e)
		for _, o := range e.Overflowing {
			w.Overflowing = append(w.Overflowing, wrap(o))
		}
		out[i] = w
	}
	return out, nil
}

// robertaProcessing: <s> A </s> (</s> B </s>), all type 0, offsets trimmed.
type robertaProcessing struct {
	sep, cls       specialTok
	trimOffsets    bool
	addPrefixSpace bool
}

func (robertaProcessing) addedTokens(pair bool) int {
	if pair {
		return 4
	}
	return 2
}

func (r robertaProcessing) process(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	if r.trimOffsets {
		for _, e := range encs {
			trimOffsets(e, r.addPrefixSpace)
			for _, o := range e.Overflowing {
				trimOffsets(o, r.addPrefixSpace)
			}
		}
	}
	for _, e := range encs {
		e.setTypeIDs(0)
	}
	if !addSpecial {
		return encs, nil
	}
	out := make([]*Encoding, len(encs))
	for i, e := range encs {
		wrap := func(e *Encoding) *Encoding {
			if i == 0 {
				return wrapSpecial(e, []specialTok{r.cls}, []specialTok{r.sep}, 0, 0, 0, 0, false)
			}
			return wrapSpecial(e, []specialTok{r.sep}, []specialTok{r.sep}, 0, 0, 0, 1, false)
		}
		w := wrap(e)
		for _, o := range e.Overflowing {
			w.Overflowing = append(w.Overflowing, wrap(o))
		}
		out[i] = w
	}
	return out, nil
}

// byteLevelProcessing only trims offsets.
type byteLevelProcessing struct {
	trimOffsets    bool
	addPrefixSpace bool
}

func (byteLevelProcessing) addedTokens(bool) int { return 0 }

func (b byteLevelProcessing) process(encs []*Encoding, _ bool) ([]*Encoding, error) {
	if b.trimOffsets {
		for _, e := range encs {
			trimOffsets(e, b.addPrefixSpace)
			for _, o := range e.Overflowing {
				trimOffsets(o, b.addPrefixSpace)
			}
		}
	}
	for i, e := range encs {
		e.setSequenceID(i)
	}
	return encs, nil
}

// templatePiece is a piece of a TemplateProcessing template.
type templatePiece struct {
	seq     int // 0: A, 1: B, -1: special token
	special string
	typeID  int32
}

type templateSpecial struct {
	ids    []int32
	tokens []string
}

type templateProcessing struct {
	single, pair []templatePiece
	specials     map[string]templateSpecial
	// encodings of the special pieces, built once: merging only reads them.
	singleEnc, pairEnc []*Encoding
	// cloneSpecials is set when a later processor of a Sequence may modify what this one returns.
	cloneSpecials bool
}

func (t *templateProcessing) count(tpl []templatePiece) int {
	n := 0
	for _, p := range tpl {
		if p.seq < 0 {
			n += len(t.specials[p.special].ids)
		}
	}
	return n
}

func (t *templateProcessing) addedTokens(pair bool) int {
	if pair {
		return t.count(t.pair)
	}
	return t.count(t.single)
}

func (t *templateProcessing) process(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	tpl, pre := t.single, t.singleEnc
	if len(encs) == 2 {
		tpl, pre = t.pair, t.pairEnc
	}
	out := make([]*Encoding, 0, len(tpl))
	var uses [2]int
	for _, p := range tpl {
		if p.seq == 0 || p.seq == 1 {
			uses[p.seq]++
		}
	}
	for i, p := range tpl {
		if p.seq >= 0 {
			if p.seq >= len(encs) {
				return nil, fmt.Errorf("tokenize: template uses a sequence that was not given")
			}
			e := encs[p.seq]
			e.setTypeIDs(p.typeID)
			e.setSequenceID(p.seq)
			if uses[p.seq] > 1 {
				// Rust clones at each use: with several uses, later type ids must not reach
				// earlier copies.
				e = e.clone()
			}
			out = append(out, e)
			continue
		}
		if addSpecial {
			if t.cloneSpecials {
				out = append(out, pre[i].clone())
			} else {
				out = append(out, pre[i])
			}
		}
	}
	return out, nil
}

// sequenceProcessing chains processors.
type sequenceProcessing []postProcessor

func (s sequenceProcessing) addedTokens(pair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(pair)
	}
	return n
}

func (s sequenceProcessing) process(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	var err error
	for _, p := range s {
		if encs, err = p.process(encs, addSpecial); err != nil {
			return nil, err
		}
	}
	return encs, nil
}

func parseSpecialPair(raw json.RawMessage, what string) (specialTok, error) {
	var a [2]json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return specialTok{}, fmt.Errorf("%s: %w", what, err)
	}
	var s specialTok
	if err := json.Unmarshal(a[0], &s.tok); err != nil {
		return s, fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(a[1], &s.id); err != nil {
		return s, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

func buildPostProcessor(raw json.RawMessage) (postProcessor, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	switch head.Type {
	case "BertProcessing", "RobertaProcessing":
		var c struct {
			Sep            json.RawMessage `json:"sep"`
			Cls            json.RawMessage `json:"cls"`
			TrimOffsets    *bool           `json:"trim_offsets"`
			AddPrefixSpace *bool           `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", head.Type, err)
		}
		sep, err := parseSpecialPair(c.Sep, head.Type+" sep")
		if err != nil {
			return nil, err
		}
		cls, err := parseSpecialPair(c.Cls, head.Type+" cls")
		if err != nil {
			return nil, err
		}
		if head.Type == "BertProcessing" {
			return bertProcessing{sep, cls}, nil
		}
		return robertaProcessing{sep, cls, boolOr(c.TrimOffsets, true), boolOr(c.AddPrefixSpace, true)}, nil
	case "ByteLevel":
		var c struct {
			TrimOffsets    *bool `json:"trim_offsets"`
			AddPrefixSpace *bool `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("ByteLevel post_processor: %w", err)
		}
		return byteLevelProcessing{boolOr(c.TrimOffsets, true), boolOr(c.AddPrefixSpace, true)}, nil
	case "TemplateProcessing":
		return buildTemplate(raw)
	case "Sequence":
		var c struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("post_processor Sequence: %w", err)
		}
		seq := make(sequenceProcessing, 0, len(c.Processors))
		for i, r := range c.Processors {
			p, err := buildPostProcessor(r)
			if err != nil {
				return nil, fmt.Errorf("post_processor Sequence[%d]: %w", i, err)
			}
			seq = append(seq, p)
		}
		for _, p := range seq[:max(len(seq)-1, 0)] {
			if t, ok := p.(*templateProcessing); ok {
				t.cloneSpecials = true
			}
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("post_processor without a type")
	}
	return nil, fmt.Errorf("unsupported post_processor %q", head.Type)
}

func buildTemplate(raw json.RawMessage) (postProcessor, error) {
	var c struct {
		Single        json.RawMessage `json:"single"`
		Pair          json.RawMessage `json:"pair"`
		SpecialTokens map[string]struct {
			ID     string   `json:"id"`
			IDs    []int32  `json:"ids"`
			Tokens []string `json:"tokens"`
		} `json:"special_tokens"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("TemplateProcessing: %w", err)
	}
	t := &templateProcessing{specials: map[string]templateSpecial{}}
	for k, v := range c.SpecialTokens {
		if len(v.IDs) != len(v.Tokens) {
			return nil, fmt.Errorf("TemplateProcessing: special token %q: ids and tokens must have the same length", k)
		}
		t.specials[k] = templateSpecial{v.IDs, v.Tokens}
	}
	var err error
	if t.single, err = parseTemplate(c.Single); err != nil {
		return nil, fmt.Errorf("TemplateProcessing single: %w", err)
	}
	if t.pair, err = parseTemplate(c.Pair); err != nil {
		return nil, fmt.Errorf("TemplateProcessing pair: %w", err)
	}
	for _, tpl := range [][]templatePiece{t.single, t.pair} {
		for _, p := range tpl {
			if _, ok := t.specials[p.special]; p.seq < 0 && !ok {
				return nil, fmt.Errorf("TemplateProcessing: missing special token %q", p.special)
			}
		}
	}
	pre := func(tpl []templatePiece) []*Encoding {
		out := make([]*Encoding, len(tpl))
		for i, p := range tpl {
			if p.seq < 0 {
				s := t.specials[p.special]
				out[i] = specialEncoding(s.ids, s.tokens, p.typeID)
			}
		}
		return out
	}
	t.singleEnc, t.pairEnc = pre(t.single), pre(t.pair)
	return t, nil
}

// parseTemplate reads a template: a list of {"Sequence": {...}} / {"SpecialToken": {...}}
// objects, or (as the Python API writes them) a string like "[CLS] $A:0 [SEP]".
func parseTemplate(raw json.RawMessage) ([]templatePiece, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("missing template")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return parseTemplateString(strings.Split(s, " "))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	out := make([]templatePiece, 0, len(items))
	for _, it := range items {
		var str string
		if json.Unmarshal(it, &str) == nil {
			p, err := parseTemplateString([]string{str})
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
			continue
		}
		var p struct {
			Sequence *struct {
				ID     string `json:"id"`
				TypeID int32  `json:"type_id"`
			} `json:"Sequence"`
			SpecialToken *struct {
				ID     string `json:"id"`
				TypeID int32  `json:"type_id"`
			} `json:"SpecialToken"`
		}
		if err := json.Unmarshal(it, &p); err != nil {
			return nil, err
		}
		switch {
		case p.Sequence != nil:
			seq := 0
			switch p.Sequence.ID {
			case "A":
			case "B":
				seq = 1
			default:
				return nil, fmt.Errorf("unknown sequence %q", p.Sequence.ID)
			}
			out = append(out, templatePiece{seq: seq, typeID: p.Sequence.TypeID})
		case p.SpecialToken != nil:
			out = append(out, templatePiece{seq: -1, special: p.SpecialToken.ID, typeID: p.SpecialToken.TypeID})
		default:
			return nil, fmt.Errorf("bad template piece %s", it)
		}
	}
	return out, nil
}

// parseTemplateString reads pieces like "$A", "$B:1", "$0", "[CLS]", "[SEP]:1".
func parseTemplateString(parts []string) ([]templatePiece, error) {
	var out []templatePiece
	for _, s := range parts {
		name, typ := s, int32(0)
		if i := strings.IndexByte(s, ':'); i >= 0 {
			if strings.Count(s, ":") > 1 {
				return nil, fmt.Errorf("cannot build piece from %q", s)
			}
			t, err := strconv.ParseUint(s[i+1:], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("cannot build piece from %q", s)
			}
			name, typ = s[:i], int32(t)
		}
		if rest, ok := strings.CutPrefix(name, "$"); ok {
			p := templatePiece{typeID: typ}
			switch rest {
			case "", "A", "a":
			case "B", "b":
				p.seq = 1
			default:
				t, err := strconv.ParseUint(rest, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("cannot build piece from %q", s)
				}
				if !strings.Contains(s, ":") {
					p.typeID = int32(t)
				}
			}
			out = append(out, p)
			continue
		}
		out = append(out, templatePiece{seq: -1, special: name, typeID: typ})
	}
	return out, nil
}
