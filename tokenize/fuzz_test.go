package tokenize

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzFromBytes: loading arbitrary bytes never panics, and what loads can encode and decode.
func FuzzFromBytes(f *testing.F) {
	// Small seeds keep the mutator fast (it slows down a lot on inputs of tens of kilobytes).
	b, err := readMaybeGz(filepath.Join("testdata/tokenizers", "ctc_chars.json.gz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(mini(nil)))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"<unk>":3,"<0x41>":4},"merges":[["a","b"]],"unk_token":"<unk>","byte_fallback":true,"fuse_unk":true},` +
		`"normalizer":{"type":"Precompiled","precompiled_charsmap":""},"pre_tokenizer":{"type":"ByteLevel"},"decoder":{"type":"ByteFallback"}}`))
	f.Add([]byte(`{"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["a",-1],["ab",-2.5],["b",-3]],"byte_fallback":true},` +
		`"normalizer":{"type":"BertNormalizer"},"pre_tokenizer":{"type":"UnicodeScripts"},"post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]},"decoder":{"type":"CTC"}}`))
	f.Add([]byte(mini(map[string]string{
		"NORM": `{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "},{"type":"Strip","strip_left":true,"strip_right":true}]}`,
		"PRE":  `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?<=a)b"},"behavior":"Isolated","invert":false},{"type":"Metaspace","replacement":"_","prepend_scheme":"first","split":true}]}`,
		"POST": `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[UNK]","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[UNK]":{"id":"[UNK]","ids":[0],"tokens":["[UNK]"]}}}`,
		"DEC":  `{"type":"Sequence","decoders":[{"type":"WordPiece","prefix":"##","cleanup":true},{"type":"Strip","content":" ","start":1,"stop":1}]}`,
	})))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzLoad(t, data)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("no result after 5 s for %d bytes", len(data))
		}
	})
}

func fuzzLoad(t *testing.T, data []byte) {
	{
		tk, err := fromBytes(data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "a", "Hello world ab", "héllo 日本 😀 ﬀ", string(data[:min(len(data), 40)])} {
			if !utf8.ValidString(s) {
				continue
			}
			e, err := tk.Encode(s, Options{AddSpecialTokens: true})
			if err != nil {
				continue
			}
			checkEncoding(t, e, s, "")
			// Decode may refuse ids that only a post-processor knows (a template special token
			// missing from the vocabulary): it must just not panic.
			tk.Decode(e.IDs, false)
		}
	}
}

// patchJSON replaces top-level entries of a tokenizer.json.
func patchJSON(base []byte, patch map[string]string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, err
	}
	for k, v := range patch {
		doc[k] = json.RawMessage(v)
	}
	return json.Marshal(doc)
}

// fuzzTokenizers covers every model and most components with small files, so that each fuzz
// worker starts quickly (the fuzzer treats a slow start as a hang).
var fuzzTokenizers = sync.OnceValues(func() ([]*Tokenizer, error) {
	var out []*Tokenizer
	add := func(data []byte, err error) error {
		if err != nil {
			return err
		}
		tk, err := FromBytes(data)
		if err != nil {
			return err
		}
		out = append(out, tk)
		return nil
	}
	read := func(p string) ([]byte, error) { return readMaybeGz(p) }
	for _, p := range []string{"real-tokenizers/bert-base-uncased/tokenizer.json", "tokenizers/wordpiece.json",
		"tokenizers/bytelevel_bpe.json", "tokenizers/unigram.json"} {
		if err := add(read(filepath.Join(fixturesDir, p))); err != nil {
			return nil, err
		}
	}
	for _, n := range []string{"t5_unigram", "llama_bpe", "wordlevel", "bpe_suffix", "ctc_chars"} {
		if err := add(read(filepath.Join("testdata/tokenizers", n+".json.gz"))); err != nil {
			return nil, err
		}
	}
	bl, err := read(filepath.Join(fixturesDir, "tokenizers/bytelevel_bpe.json"))
	if err != nil {
		return nil, err
	}
	wp, err := read(filepath.Join(fixturesDir, "tokenizers/wordpiece.json"))
	if err != nil {
		return nil, err
	}
	split := func(re string) string {
		return `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + strconv.Quote(re) +
			`},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}`
	}
	variants := []struct {
		base  []byte
		patch map[string]string
	}{
		{bl, map[string]string{"pre_tokenizer": split(cl100kPattern), "normalizer": `{"type":"NFC"}`,
			"post_processor": `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|endoftext|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<|endoftext|>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"<|endoftext|>":{"id":"<|endoftext|>","ids":[0],"tokens":["<|endoftext|>"]}}}`}},
		{bl, map[string]string{"pre_tokenizer": split(`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`)}},
		{bl, map[string]string{"pre_tokenizer": split(`(?<=\p{Ll})(?=\p{Lu})|\b`),
			"added_tokens":   `[{"id":0,"content":"<|endoftext|>","special":true,"normalized":false,"lstrip":true,"rstrip":true},{"id":1000,"content":"<mask>","special":true,"normalized":false,"lstrip":true}]`,
			"post_processor": `{"type":"RobertaProcessing","sep":["<|endoftext|>",0],"cls":["<mask>",1000],"trim_offsets":true,"add_prefix_space":true}`}},
		{wp, map[string]string{
			"normalizer":    `{"type":"Sequence","normalizers":[{"type":"NFKD"},{"type":"StripAccents"},{"type":"Lowercase"},{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "},{"type":"Strip","strip_left":true,"strip_right":true}]}`,
			"pre_tokenizer": `{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Contiguous"},{"type":"UnicodeScripts"}]}`,
			"added_tokens":  `[{"id":0,"content":"[PAD]","special":true,"normalized":false},{"id":1200,"content":"hello world","special":false,"normalized":true},{"id":1201,"content":"<sw>","special":true,"normalized":false,"single_word":true},{"id":1202,"content":"[R]","rstrip":true,"normalized":false}]`}},
	}
	for _, v := range variants {
		if err := add(patchJSON(v.base, v.patch)); err != nil {
			return nil, err
		}
	}
	return out, nil
})

// checkEncoding verifies the invariants every encoding must satisfy.
func checkEncoding(t *testing.T, e *Encoding, text, pair string) {
	t.Helper()
	checkEncodingAt(t, e, text, pair, false)
}

// In overflowing windows of pairs, Rust labels every token sequence 0 (the sequence ranges are
// lost when windows are merged), so only the bounds of the longer text can be checked there.
func checkEncodingAt(t *testing.T, e *Encoding, text, pair string, overflow bool) {
	t.Helper()
	n := e.Len()
	for name, l := range map[string]int{"type_ids": len(e.TypeIDs), "tokens": len(e.Tokens), "offsets": len(e.Offsets),
		"byte_offsets": len(e.ByteOffsets), "special": len(e.SpecialTokensMask), "attention": len(e.AttentionMask),
		"word_ids": len(e.WordIDs), "sequence_ids": len(e.SequenceIDs)} {
		if l != n {
			t.Fatalf("%s has %d entries for %d tokens", name, l, n)
		}
	}
	lastStart := map[int]int{}
	for i := 0; i < n; i++ {
		seq := text
		if e.SequenceIDs[i] == 1 {
			seq = pair
		}
		chars, bytes := utf8.RuneCountInString(seq), len(seq)
		if overflow && pair != "" {
			// Either text may be the token's: bound by the longer of the two, in each unit (the
			// one with more bytes may have fewer characters).
			chars = max(utf8.RuneCountInString(text), utf8.RuneCountInString(pair))
			bytes = max(len(text), len(pair))
		}
		o, b := e.Offsets[i], e.ByteOffsets[i]
		if o.Start < 0 || o.Start > o.End || o.End > chars && e.SpecialTokensMask[i] == 0 {
			t.Fatalf("token %d %q: char offsets %v outside %q", i, e.Tokens[i], o, seq)
		}
		if b.Start < 0 || b.Start > b.End || b.End > bytes && e.SpecialTokensMask[i] == 0 {
			t.Fatalf("token %d %q: byte offsets %v outside %q", i, e.Tokens[i], b, seq)
		}
		// Zero-width spans are skipped: offset trimming (ByteLevel, Roberta) collapses whitespace
		// tokens to an empty span at their end, as Rust does.
		if e.SpecialTokensMask[i] == 0 && e.SequenceIDs[i] >= 0 && !(overflow && pair != "") && o.Start < o.End {
			if last, ok := lastStart[e.SequenceIDs[i]]; ok && o.Start < last {
				t.Fatalf("token %d %q: offsets go backwards (%d after %d)", i, e.Tokens[i], o.Start, last)
			}
			lastStart[e.SequenceIDs[i]] = o.Start
		}
	}
	for _, ov := range e.Overflowing {
		checkEncodingAt(t, ov, text, pair, true)
	}
}

// FuzzEncode: encoding never panics, offsets stay inside the text and move forward, the ids
// decode, and only invalid UTF-8 or impossible truncation is an error.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"Hello world!", "", "Café déjà vu 😀 日本語", "a\u0301\u0302 ﬀ İ", "[CLS] x <|endoftext|> <s>", "  \t\n\r\n ", "don't I'M 123456 $%^"} {
		f.Add(s, "pair text", uint8(0), uint8(0), uint8(0))
		f.Add(s, "", uint8(7), uint8(9), uint8(2))
	}
	tks, err := fuzzTokenizers()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text, pair string, flags, maxLen, stride uint8) {
		var err error
		o := Options{AddSpecialTokens: flags&1 != 0}
		if flags&2 != 0 {
			o.Truncation = &Truncation{MaxLength: int(maxLen % 40), Stride: int(stride % 8), Strategy: TruncationStrategy(flags >> 4 % 3), Direction: Direction(flags >> 3 & 1)}
		}
		if flags&4 != 0 {
			o.Padding = &Padding{Strategy: PaddingStrategy(flags >> 6 & 1), Length: int(maxLen % 50), PadToMultipleOf: int(stride % 5), Direction: Direction(flags >> 7)}
		}
		hasPair := flags&8 != 0 && pair != ""
		valid := utf8.ValidString(text) && (!hasPair || utf8.ValidString(pair))
		idx := int(flags+maxLen) % len(tks)
		tk := tks[idx]
		var e *Encoding
		// A slow input is a bug too (quadratic paths): report it instead of hanging the fuzzer.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if hasPair {
				e, err = tk.EncodePair(text, pair, o)
			} else {
				e, err = tk.Encode(text, o)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("tokenizer %d: no result after 5 s for %d+%d bytes", idx, len(text), len(pair))
		}
		if !valid {
			if err == nil {
				t.Fatal("invalid UTF-8 accepted")
			}
			return
		}
		if err != nil {
			if o.Truncation != nil && (strings.Contains(err.Error(), "stride") || strings.Contains(err.Error(), "truncation")) {
				return
			}
			t.Fatalf("encode %q: %v", text, err)
		}
		if !hasPair {
			pair = ""
		}
		if o.Padding == nil {
			checkEncoding(t, e, text, pair)
		}
		if _, err := tk.Decode(e.IDs, flags&1 != 0); err != nil {
			t.Fatalf("decode: %v", err)
		}
	})
}
