package tokenize

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Direction is a truncation or padding side.
type Direction uint8

const (
	Right Direction = iota
	Left
)

// TruncationStrategy chooses which sequence of a pair loses tokens.
type TruncationStrategy uint8

const (
	LongestFirst TruncationStrategy = iota
	OnlyFirst
	OnlySecond
)

// Truncation limits the length of encodings.
type Truncation struct {
	MaxLength int // total length including special tokens, like HF
	Stride    int // overlap for overflowing windows
	Strategy  TruncationStrategy
	Direction Direction
}

// PaddingStrategy chooses the padded length.
type PaddingStrategy uint8

const (
	PadBatchLongest PaddingStrategy = iota
	PadFixed
)

// Padding pads encodings to a common length.
type Padding struct {
	Strategy        PaddingStrategy
	Length          int // for PadFixed
	PadToMultipleOf int
	Direction       Direction
	PadID           int32
	PadTypeID       int32
	PadToken        string
}

// Options control one Encode, EncodePair or EncodeBatch call.
type Options struct {
	AddSpecialTokens bool
	Truncation       *Truncation // nil: no truncation
	// Padding nil: no padding. Encode and EncodePair pad like Rust's encode: to Length with
	// PadFixed, and with PadBatchLongest only up to PadToMultipleOf.
	Padding *Padding
}

// Input is one element of a batch.
type Input struct {
	Text, Pair string
	HasPair    bool
}

// Tokenizer is immutable after loading and safe for concurrent use.
type Tokenizer struct {
	normalizer    normalizer
	preTokenizer  preTokenizer
	model         model
	postProcessor postProcessor
	decoder       decoder
	added         *addedVocab
	truncation    *Truncation
	padding       *Padding
}

// FromFile loads a tokenizer.json file.
func FromFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	t, err := FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return t, nil
}

// FromBytes loads a tokenizer from the contents of a tokenizer.json file. Unsupported
// components are reported by name.
func FromBytes(data []byte) (t *Tokenizer, err error) {
	defer func() {
		// A safety net only: loading must never bring the process down, whatever the input
		// (the fuzz tests run fromBytes without it).
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("tokenize: invalid tokenizer.json: %v", r)
		}
	}()
	return fromBytes(data)
}

func fromBytes(data []byte) (t *Tokenizer, err error) {
	var doc struct {
		Version       *string         `json:"version"`
		Truncation    json.RawMessage `json:"truncation"`
		Padding       json.RawMessage `json:"padding"`
		AddedTokens   json.RawMessage `json:"added_tokens"`
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       json.RawMessage `json:"decoder"`
		Model         *modelJSON      `json:"model"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("tokenize: invalid tokenizer.json: %w", err)
	}
	if doc.Version != nil && *doc.Version != "1.0" {
		return nil, fmt.Errorf("tokenize: unknown tokenizer.json version %q", *doc.Version)
	}
	t = &Tokenizer{}
	wrap := func(err error) error { return fmt.Errorf("tokenize: %w", err) }
	if doc.Model != nil {
		if t.model, err = buildModel(doc.Model); err != nil {
			return nil, wrap(err)
		}
	} else {
		return nil, errors.New("tokenize: tokenizer.json has no model")
	}
	if !isNull(doc.Normalizer) {
		if t.normalizer, err = buildNormalizer(doc.Normalizer); err != nil {
			return nil, wrap(err)
		}
	}
	if !isNull(doc.PreTokenizer) {
		if t.preTokenizer, err = buildPreTokenizer(doc.PreTokenizer); err != nil {
			return nil, wrap(err)
		}
	}
	if !isNull(doc.PostProcessor) {
		if t.postProcessor, err = buildPostProcessor(doc.PostProcessor); err != nil {
			return nil, wrap(err)
		}
	}
	if !isNull(doc.Decoder) {
		if t.decoder, err = buildDecoder(doc.Decoder); err != nil {
			return nil, wrap(err)
		}
	}
	if t.truncation, err = parseTruncation(doc.Truncation); err != nil {
		return nil, wrap(err)
	}
	if t.padding, err = parsePadding(doc.Padding); err != nil {
		return nil, wrap(err)
	}
	tokens, err := parseAddedTokens(doc.AddedTokens)
	if err != nil {
		return nil, wrap(err)
	}
	t.added = newAddedVocab()
	if err := t.added.add(tokens, t.model, t.normalizer); err != nil {
		return nil, wrap(err)
	}
	return t, nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func parseDirection(s string) (Direction, error) {
	switch s {
	case "Right", "right", "":
		return Right, nil
	case "Left", "left":
		return Left, nil
	}
	return 0, fmt.Errorf("unknown direction %q", s)
}

func parseTruncation(raw json.RawMessage) (*Truncation, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c struct {
		Direction string `json:"direction"`
		MaxLength int    `json:"max_length"`
		Strategy  string `json:"strategy"`
		Stride    int    `json:"stride"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("truncation: %w", err)
	}
	d, err := parseDirection(c.Direction)
	if err != nil {
		return nil, fmt.Errorf("truncation: %w", err)
	}
	tr := &Truncation{MaxLength: c.MaxLength, Stride: c.Stride, Direction: d}
	switch c.Strategy {
	case "LongestFirst", "longest_first", "":
	case "OnlyFirst", "only_first":
		tr.Strategy = OnlyFirst
	case "OnlySecond", "only_second":
		tr.Strategy = OnlySecond
	default:
		return nil, fmt.Errorf("truncation: unknown strategy %q", c.Strategy)
	}
	if tr.MaxLength < 0 || tr.Stride < 0 {
		return nil, fmt.Errorf("truncation: negative max_length or stride")
	}
	return tr, nil
}

func parsePadding(raw json.RawMessage) (*Padding, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c struct {
		Strategy        json.RawMessage `json:"strategy"`
		Direction       string          `json:"direction"`
		PadToMultipleOf *int            `json:"pad_to_multiple_of"`
		PadID           int32           `json:"pad_id"`
		PadTypeID       int32           `json:"pad_type_id"`
		PadToken        string          `json:"pad_token"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("padding: %w", err)
	}
	d, err := parseDirection(c.Direction)
	if err != nil {
		return nil, fmt.Errorf("padding: %w", err)
	}
	p := &Padding{Direction: d, PadID: c.PadID, PadTypeID: c.PadTypeID, PadToken: c.PadToken}
	if c.PadToMultipleOf != nil {
		p.PadToMultipleOf = *c.PadToMultipleOf
	}
	var s string
	var fixed struct {
		Fixed *int `json:"Fixed"`
	}
	switch {
	case json.Unmarshal(c.Strategy, &s) == nil && s == "BatchLongest":
	case json.Unmarshal(c.Strategy, &fixed) == nil && fixed.Fixed != nil:
		p.Strategy, p.Length = PadFixed, *fixed.Fixed
	default:
		return nil, fmt.Errorf("padding: unknown strategy %s", c.Strategy)
	}
	if p.Length < 0 || p.PadToMultipleOf < 0 {
		return nil, fmt.Errorf("padding: negative length")
	}
	return p, nil
}

// Truncation returns the truncation configured in tokenizer.json, nil if none.
func (t *Tokenizer) Truncation() *Truncation {
	if t.truncation == nil {
		return nil
	}
	c := *t.truncation
	return &c
}

// Padding returns the padding configured in tokenizer.json, nil if none.
func (t *Tokenizer) Padding() *Padding {
	if t.padding == nil {
		return nil
	}
	c := *t.padding
	return &c
}

// TokenToID returns the id of a token (added tokens first, then the model vocabulary).
func (t *Tokenizer) TokenToID(token string) (int32, bool) {
	if id, ok := t.added.byContent[token]; ok {
		return id, true
	}
	return t.model.tokenToID(token)
}

// IDToToken returns the token of an id (added tokens first, then the model vocabulary).
func (t *Tokenizer) IDToToken(id int32) (string, bool) {
	if s, ok := t.added.tokenString(id); ok {
		return s, true
	}
	return t.model.idToToken(id)
}

// VocabSize returns the model vocabulary size, plus the added tokens not in it.
func (t *Tokenizer) VocabSize(withAddedTokens bool) int {
	n := t.model.vocabSize()
	if !withAddedTokens {
		return n
	}
	for content := range t.added.byContent {
		if _, ok := t.model.tokenToID(content); !ok {
			n++
		}
	}
	return n
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int32) bool {
	tok, ok := t.added.byID[id]
	return ok && t.added.special[tok.Content]
}
