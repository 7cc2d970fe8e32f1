package tokenize

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func bert(t testing.TB) *Tokenizer {
	return loadTokenizer(t, filepath.Join(fixturesDir, "real-tokenizers/bert-base-uncased/tokenizer.json"))
}

func gpt2(t testing.TB) *Tokenizer {
	return loadTokenizer(t, filepath.Join(fixturesDir, "real-tokenizers/gpt2/tokenizer.json"))
}

const miniWordPiece = `{"version":"1.0","truncation":null,"padding":null,"added_tokens":[
 {"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
 "normalizer":NORM,"pre_tokenizer":PRE,"post_processor":POST,"decoder":DEC,
 "model":MODEL}`

const miniModel = `{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[UNK]":0,"a":1,"b":2,"##b":3}}`

func mini(parts map[string]string) string {
	s := miniWordPiece
	for _, k := range []string{"NORM", "PRE", "POST", "DEC", "MODEL"} {
		v, ok := parts[k]
		if !ok {
			v = "null"
			if k == "MODEL" {
				v = miniModel
			}
		}
		s = strings.Replace(s, k, v, 1)
	}
	return s
}

func TestFromBytesErrors(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"not json", `{`, "invalid tokenizer.json"},
		{"no model", `{"version":"1.0"}`, "no model"},
		{"version", `{"version":"2.0","model":` + miniModel + `}`, "version"},
		{"model type", mini(map[string]string{"MODEL": `{"type":"Magic","vocab":{}}`}), `unsupported model "Magic"`},
		{"normalizer", mini(map[string]string{"NORM": `{"type":"Uppercase"}`}), `unsupported normalizer "Uppercase"`},
		{"nested normalizer", mini(map[string]string{"NORM": `{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Foo"}]}`}), `Sequence[1]: unsupported normalizer "Foo"`},
		{"pre_tokenizer", mini(map[string]string{"PRE": `{"type":"Magic"}`}), `unsupported pre_tokenizer "Magic"`},
		{"post_processor", mini(map[string]string{"POST": `{"type":"Magic"}`}), `unsupported post_processor "Magic"`},
		{"decoder", mini(map[string]string{"DEC": `{"type":"Magic"}`}), `unsupported decoder "Magic"`},
		{"regex", mini(map[string]string{"PRE": `{"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated","invert":false}`}), "regex"},
		{"behavior", mini(map[string]string{"PRE": `{"type":"Split","pattern":{"String":"x"},"behavior":"Sideways","invert":false}`}), "behavior"},
		{"precompiled", mini(map[string]string{"NORM": `{"type":"Precompiled","precompiled_charsmap":"%%%"}`}), "Precompiled"},
		{"template", mini(map[string]string{"POST": `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[X]","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{}}`}), "missing special token"},
		{"merges", `{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}`, "merged token"},
		{"metaspace", mini(map[string]string{"PRE": `{"type":"Metaspace","replacement":"ab"}`}), "replacement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromBytes([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "tokenize: ") {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestInvalidUTF8AndDecodeErrors(t *testing.T) {
	tk := bert(t)
	if _, err := tk.Encode("ab\xffcd", Options{}); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if _, err := tk.EncodePair("ok", "\xc3", Options{}); err == nil {
		t.Error("invalid UTF-8 pair accepted")
	}
	if _, err := tk.Decode([]int32{101, 999999}, false); err == nil {
		t.Error("unknown id accepted")
	}
	if _, err := tk.Decode([]int32{-1}, false); err == nil {
		t.Error("negative id accepted")
	}
	if s, err := tk.Decode(nil, true); err != nil || s != "" {
		t.Errorf("empty decode: %q %v", s, err)
	}
}

func TestVocabularyAccessors(t *testing.T) {
	tk := bert(t)
	if id, ok := tk.TokenToID("hello"); !ok || id != 7592 {
		t.Errorf("TokenToID(hello) = %d %v", id, ok)
	}
	if tok, ok := tk.IDToToken(102); !ok || tok != "[SEP]" {
		t.Errorf("IDToToken(102) = %q %v", tok, ok)
	}
	if _, ok := tk.IDToToken(1 << 20); ok {
		t.Error("IDToToken out of range")
	}
	if !tk.IsSpecial(101) || tk.IsSpecial(7592) {
		t.Error("IsSpecial")
	}
	if n := tk.VocabSize(true); n != 30522 {
		t.Errorf("VocabSize = %d", n)
	}
	g := gpt2(t)
	if n, m := g.VocabSize(false), g.VocabSize(true); n != 50257 || m != 50257 {
		t.Errorf("gpt2 VocabSize = %d %d", n, m)
	}
	e, err := g.Encode("Hello world", Options{})
	if err != nil || !reflect.DeepEqual(e.IDs, []int32{15496, 995}) {
		t.Errorf("gpt2 Hello world = %v %v", e, err)
	}
}

func TestTruncationPaddingDefaults(t *testing.T) {
	js := strings.Replace(mini(map[string]string{"PRE": `{"type":"WhitespaceSplit"}`}), `"truncation":null,"padding":null`,
		`"truncation":{"direction":"Left","max_length":7,"strategy":"OnlySecond","stride":2},`+
			`"padding":{"strategy":{"Fixed":16},"direction":"Right","pad_to_multiple_of":8,"pad_id":3,"pad_type_id":1,"pad_token":"[P]"}`, 1)
	tk, err := FromBytes([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tk.Truncation(), (&Truncation{MaxLength: 7, Stride: 2, Strategy: OnlySecond, Direction: Left}); !reflect.DeepEqual(got, want) {
		t.Errorf("Truncation() = %+v", got)
	}
	if got, want := tk.Padding(), (&Padding{Strategy: PadFixed, Length: 16, PadToMultipleOf: 8, PadID: 3, PadTypeID: 1, PadToken: "[P]"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Padding() = %+v", got)
	}
	// Encode uses only the options passed.
	e, err := tk.Encode("a b", Options{})
	if err != nil || e.Len() != 2 {
		t.Errorf("Encode ignored options: %v %v", e, err)
	}
	if bert(t).Truncation() != nil || bert(t).Padding() != nil {
		t.Error("bert has no defaults")
	}
}

func TestEncodeBatchMatchesEncode(t *testing.T) {
	tk := bert(t)
	texts := []string{"Hello world!", "", "A longer sentence with more words in it.", "Café ☕", "x"}
	inputs := make([]Input, len(texts))
	for i, s := range texts {
		inputs[i] = Input{Text: s}
	}
	inputs = append(inputs, Input{Text: "question?", Pair: "context here", HasPair: true})
	o := Options{AddSpecialTokens: true, Truncation: &Truncation{MaxLength: 8}, Padding: &Padding{Direction: Left, PadToken: "[PAD]"}}
	batch, err := tk.EncodeBatch(inputs, o)
	if err != nil {
		t.Fatal(err)
	}
	single := o
	single.Padding = nil
	longest := 0
	for _, e := range batch {
		longest = max(longest, e.Len())
	}
	for i, in := range inputs {
		var e *Encoding
		if in.HasPair {
			e, err = tk.EncodePair(in.Text, in.Pair, single)
		} else {
			e, err = tk.Encode(in.Text, single)
		}
		if err != nil {
			t.Fatal(err)
		}
		b := batch[i]
		if b.Len() != longest {
			t.Errorf("%d: not padded to %d: %d", i, longest, b.Len())
		}
		pad := b.Len() - e.Len()
		if !reflect.DeepEqual(b.IDs[pad:], e.IDs) || !reflect.DeepEqual(b.Offsets[pad:], e.Offsets) {
			t.Errorf("%d: batch %v, single %v", i, b.IDs, e.IDs)
		}
		for k := 0; k < pad; k++ {
			if b.AttentionMask[k] != 0 || b.SequenceIDs[k] != -1 || b.WordIDs[k] != -1 {
				t.Errorf("%d: bad padding at %d", i, k)
			}
		}
	}
	if out, err := tk.EncodeBatch(nil, o); err != nil || len(out) != 0 {
		t.Errorf("empty batch: %v %v", out, err)
	}
	if _, err := tk.EncodeBatch([]Input{{Text: "ok"}, {Text: "\xff"}}, o); err == nil {
		t.Error("batch with invalid input accepted")
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := gpt2(t)
	texts := []string{"Hello world", "The quick brown fox", "Café déjà vu 😀", "  spaces  ", "x\ny"}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		e, err := tk.Encode(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = e.IDs
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				i := (g + k) % len(texts)
				e, err := tk.Encode(texts[i], Options{})
				if err != nil || !reflect.DeepEqual(e.IDs, want[i]) {
					t.Errorf("goroutine %d: %v %v", g, e, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// ByteOffsets are the byte spans of the same text as Offsets.
func TestByteOffsetsMatchCharOffsets(t *testing.T) {
	for _, tk := range []*Tokenizer{bert(t), gpt2(t)} {
		for _, text := range []string{"Héllo wörld, ça va? 😀 日本", "naïve café", "a\u0301b ﬀ İ", "plain ascii"} {
			e, err := tk.Encode(text, Options{AddSpecialTokens: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range e.IDs {
				o, b := e.Offsets[i], e.ByteOffsets[i]
				if e.SpecialTokensMask[i] == 1 {
					continue
				}
				if b.Start < 0 || b.End > len(text) || b.Start > b.End {
					t.Fatalf("%q: byte offsets %v out of range", text, b)
				}
				if utf8.RuneCountInString(text[:b.Start]) != o.Start || utf8.RuneCountInString(text[:b.End]) != o.End {
					t.Errorf("%q token %d: bytes %v chars %v", text, i, b, o)
				}
			}
		}
	}
}

func TestTruncationErrors(t *testing.T) {
	tk := bert(t)
	_, err := tk.Encode("a b c d e f", Options{AddSpecialTokens: true, Truncation: &Truncation{MaxLength: 6, Stride: 5}})
	if err == nil || !strings.Contains(err.Error(), "stride") {
		t.Errorf("stride larger than the window accepted: %v", err)
	}
	_, err = tk.Encode("a b c d e f", Options{Truncation: &Truncation{MaxLength: 2, Strategy: OnlySecond}})
	if err == nil {
		t.Error("only_second without a pair accepted")
	}
	// Overflowing windows only cover what was tokenized: like tokenizers 0.23, tokenization stops
	// at the first pre-token reaching max_length, so a long word is needed to overflow.
	e, err := tk.Encode("a b c d e f", Options{Truncation: &Truncation{MaxLength: 3, Stride: 1}})
	if err != nil || e.Len() != 3 || len(e.Overflowing) != 0 {
		t.Fatalf("%v %v", e, err)
	}
	e, err = tk.Encode("antidisestablishmentarianism", Options{Truncation: &Truncation{MaxLength: 3, Stride: 1}})
	if err != nil || e.Len() != 3 || len(e.Overflowing) == 0 {
		t.Fatalf("%v %v", e, err)
	}
	for _, o := range e.Overflowing {
		if o.Len() > 3 || len(o.SequenceIDs) != o.Len() {
			t.Errorf("bad overflow %+v", o)
		}
	}
}

func ExampleTokenizer_Encode() {
	tk, err := FromFile("../testdata/fixtures/real-tokenizers/bert-base-uncased/tokenizer.json")
	if err != nil {
		panic(err)
	}
	e, err := tk.Encode("Hello world", Options{AddSpecialTokens: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(e.IDs, e.Tokens, e.Offsets)
	// Output: [101 7592 2088 102] [[CLS] hello world [SEP]] [{0 0} {0 5} {6 11} {0 0}]
}

// A processor after TemplateProcessing in a Sequence must not modify the template's shared
// special-token encodings (that would race between goroutines and leak between calls).
func TestTemplateThenRobertaIsStable(t *testing.T) {
	js := mini(map[string]string{
		"PRE": `{"type":"WhitespaceSplit"}`,
		"POST": `{"type":"Sequence","processors":[` +
			`{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[UNK]","type_id":1}},{"Sequence":{"id":"A","type_id":1}}],` +
			`"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[UNK]":{"id":"[UNK]","ids":[0],"tokens":[" x "]}}},` +
			`{"type":"RobertaProcessing","sep":["b",2],"cls":["a",1],"trim_offsets":true,"add_prefix_space":false}]}`,
	})
	tk, err := FromBytes([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	first, err := tk.Encode("a b", Options{AddSpecialTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				e, err := tk.Encode("a b", Options{AddSpecialTokens: true})
				if err != nil || !reflect.DeepEqual(e, first) {
					t.Errorf("call differs: %+v vs %+v (%v)", e, first, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
