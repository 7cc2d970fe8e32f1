package tokenize

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Parity with the goldens of scripts/tokenizer-goldens/make-goldens.js (npm tokenizers 0.23.2).

type oracleEnc struct {
	Error             string       `json:"error"`
	IDs               []int        `json:"ids"`
	TypeIDs           []int        `json:"type_ids"`
	Tokens            []string     `json:"tokens"`
	Offsets           [][2]int     `json:"offsets"`
	SpecialTokensMask []int        `json:"special_tokens_mask"`
	AttentionMask     []int        `json:"attention_mask"`
	WordIDs           []*int       `json:"word_ids"`
	SequenceIDs       []*int       `json:"sequence_ids"`
	Overflowing       []*oracleEnc `json:"overflowing"`
	Decoded           *string      `json:"decoded"`
	DecodedKeep       *string      `json:"decoded_keep"`
}

type oracleCase struct {
	Text       string          `json:"text"`
	Pair       *string         `json:"pair"`
	Add        bool            `json:"add"`
	Truncation json.RawMessage `json:"truncation"`
	Padding    json.RawMessage `json:"padding"`
	oracleEnc
}

type oracleResults struct {
	Single []oracleCase `json:"single"`
	Pairs  []oracleCase `json:"pairs"`
	Trunc  []oracleCase `json:"trunc"`
	Pad    []oracleCase `json:"pad"`
	Batch  []struct {
		Truncation json.RawMessage `json:"truncation"`
		Padding    json.RawMessage `json:"padding"`
		Texts      []string        `json:"texts"`
		Error      string          `json:"error"`
		Encodings  []*oracleEnc    `json:"encodings"`
	} `json:"batch"`
	Prose  string `json:"prose"`
	Decode []struct {
		IDs         []int32 `json:"ids"`
		Decoded     string  `json:"decoded"`
		DecodedKeep string  `json:"decoded_keep"`
	} `json:"decode"`
	Vocab struct {
		WithAdded    int `json:"with_added"`
		WithoutAdded int `json:"without_added"`
	} `json:"vocab"`
}

type oracleSpec struct {
	Base  string                     `json:"base"`
	Patch map[string]json.RawMessage `json:"patch"`
	Model map[string]json.RawMessage `json:"model"`
}

type goldens struct {
	Generator string                   `json:"generator"`
	Prose     []string                 `json:"prose"`
	Specs     map[string]oracleSpec    `json:"specs"`
	Results   map[string]oracleResults `json:"results"`
}

var loadGoldens = sync.OnceValues(func() (*goldens, error) {
	b, err := readMaybeGz("testdata/goldens.json.gz")
	if err != nil {
		return nil, err
	}
	var g goldens
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, err
	}
	return &g, nil
})

func readMaybeGz(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return b, err
	}
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

// materialize builds a spec's tokenizer.json exactly like make-goldens.js.
func materialize(t testing.TB, s oracleSpec) []byte {
	if t == nil {
		t = panicTB{}
	}
	t.Helper()
	if s.Base == "" {
		// Inline tokenizer: the patch is the whole document.
		out, err := json.Marshal(s.Patch)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	raw, err := readMaybeGz(filepath.Join("..", s.Base))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	base := map[string]json.RawMessage{}
	for k, v := range doc {
		base[k] = v
	}
	for k, v := range s.Patch {
		doc[k] = v
	}
	if n, ok := s.Patch["normalizer"]; ok && !isNull(n) {
		var pn map[string]json.RawMessage
		if err := json.Unmarshal(n, &pn); err != nil {
			t.Fatal(err)
		}
		if list, ok := pn["normalizers"]; ok {
			var items []json.RawMessage
			json.Unmarshal(list, &items)
			var baseItems []json.RawMessage
			var bn map[string]json.RawMessage
			json.Unmarshal(base["normalizer"], &bn)
			if bl, ok := bn["normalizers"]; ok {
				json.Unmarshal(bl, &baseItems)
			} else {
				baseItems = []json.RawMessage{base["normalizer"]}
			}
			for i := range items {
				if isNull(items[i]) && i < len(baseItems) {
					items[i] = baseItems[i]
				}
			}
			pn["normalizers"], _ = json.Marshal(items)
			doc["normalizer"], _ = json.Marshal(pn)
		}
	}
	if len(s.Model) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(doc["model"], &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Model {
			m[k] = v
		}
		doc["model"], _ = json.Marshal(m)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// panicTB lets materialize run outside a test (fuzz set-up); failures panic.
type panicTB struct{ testing.TB }

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

func nilToMinus(a []*int) []int {
	if a == nil {
		return nil
	}
	return derefInts(a)
}

func compareEnc(ta *tally, prefix, label string, e *Encoding, w *oracleEnc) {
	ta.check(prefix+"ids", label, ints32(e.IDs), w.IDs)
	ta.check(prefix+"tokens", label, e.Tokens, w.Tokens)
	ta.check(prefix+"offsets", label, offsetsOf(e.Offsets), w.Offsets)
	ta.check(prefix+"type_ids", label, ints32(e.TypeIDs), w.TypeIDs)
	ta.check(prefix+"special_mask", label, ints8(e.SpecialTokensMask), w.SpecialTokensMask)
	ta.check(prefix+"attention", label, ints8(e.AttentionMask), w.AttentionMask)
	ta.check(prefix+"word_ids", label, e.WordIDs, nilToMinus(w.WordIDs))
	ta.check(prefix+"sequence_ids", label, e.SequenceIDs, nilToMinus(w.SequenceIDs))
	if ta.check(prefix+"overflow_count", label, len(e.Overflowing), len(w.Overflowing)) {
		for i := range w.Overflowing {
			compareEnc(ta, "overflow_", fmt.Sprintf("%s #%d", label, i), e.Overflowing[i], w.Overflowing[i])
		}
	}
}

func parseOpts(t testing.TB, add bool, trunc, pad json.RawMessage) Options {
	o := Options{AddSpecialTokens: add}
	var err error
	if o.Truncation, err = parseTruncation(trunc); err != nil {
		t.Fatal(err)
	}
	if o.Padding, err = parsePadding(pad); err != nil {
		t.Fatal(err)
	}
	return o
}

func runCase(t *testing.T, ta *tally, tk *Tokenizer, kind string, c *oracleCase, decode bool) {
	o := parseOpts(t, c.Add, c.Truncation, c.Padding)
	var e *Encoding
	var err error
	label := fmt.Sprintf("%+q add=%v", c.Text, c.Add)
	if c.Pair != nil {
		label = fmt.Sprintf("%+q+%+q add=%v", c.Text, *c.Pair, c.Add)
		e, err = tk.EncodePair(c.Text, *c.Pair, o)
	} else {
		e, err = tk.Encode(c.Text, o)
	}
	if len(c.Truncation) > 0 {
		label += " trunc=" + string(c.Truncation)
	}
	if len(c.Padding) > 0 {
		label += " pad=" + string(c.Padding)
	}
	if c.Error != "" || err != nil {
		ta.check(kind+"error", label, err != nil, c.Error != "")
		return
	}
	compareEnc(ta, kind, label, e, &c.oracleEnc)
	if decode && c.Decoded != nil {
		d, err := tk.Decode(e.IDs, true)
		ta.check(kind+"decoded", label, d, *c.Decoded)
		ta.check(kind+"decode_error", label, err, nil)
		d, _ = tk.Decode(e.IDs, false)
		ta.check(kind+"decoded_keep", label, d, *c.DecodedKeep)
	}
}

// digest mirrors make-goldens.js.
func digest(e *Encoding, decoded, decodedKeep string) string {
	join := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	opt := func(a []int) string {
		return join(len(a), func(i int) string {
			if a[i] < 0 {
				return "-"
			}
			return strconv.Itoa(a[i])
		})
	}
	ids := "ids=" + join(len(e.IDs), func(i int) string { return strconv.Itoa(int(e.IDs[i])) })
	rest := strings.Join([]string{
		"type=" + join(len(e.TypeIDs), func(i int) string { return strconv.Itoa(int(e.TypeIDs[i])) }),
		"tok=" + strings.Join(e.Tokens, "\u0001"),
		"off=" + join(len(e.Offsets), func(i int) string { return fmt.Sprintf("%d:%d", e.Offsets[i].Start, e.Offsets[i].End) }),
		"sp=" + join(len(e.SpecialTokensMask), func(i int) string { return strconv.Itoa(int(e.SpecialTokensMask[i])) }),
		"att=" + join(len(e.AttentionMask), func(i int) string { return strconv.Itoa(int(e.AttentionMask[i])) }),
		"w=" + opt(e.WordIDs),
		"seq=" + opt(e.SequenceIDs),
		"dec=" + decoded,
		"deck=" + decodedKeep,
	}, "\n")
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:12]
	}
	return h(ids) + h(ids+"\n"+rest)
}

func TestOracleGoldens(t *testing.T) {
	g, err := loadGoldens()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(g.Specs))
	for n := range g.Specs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tk, err := FromBytes(materialize(t, g.Specs[name]))
			if err != nil {
				t.Fatal(err)
			}
			r := g.Results[name]
			ta := newTally(name)
			for i := range r.Single {
				runCase(t, ta, tk, "", &r.Single[i], true)
			}
			for i := range r.Pairs {
				runCase(t, ta, tk, "pair_", &r.Pairs[i], false)
			}
			for i := range r.Trunc {
				runCase(t, ta, tk, "trunc_", &r.Trunc[i], false)
			}
			for i := range r.Pad {
				runCase(t, ta, tk, "pad_", &r.Pad[i], false)
			}
			for _, b := range r.Batch {
				o := parseOpts(t, true, b.Truncation, b.Padding)
				inputs := make([]Input, len(b.Texts))
				for i, s := range b.Texts {
					inputs[i] = Input{Text: s}
				}
				encs, err := tk.EncodeBatch(inputs, o)
				label := fmt.Sprintf("batch trunc=%s pad=%s", b.Truncation, b.Padding)
				if b.Error != "" || err != nil {
					ta.check("batch_error", label, err != nil, b.Error != "")
					continue
				}
				for i, e := range encs {
					compareEnc(ta, "batch_", fmt.Sprintf("%s %+q", label, b.Texts[i]), e, b.Encodings[i])
				}
			}
			step := 1
			if testing.Short() || raceEnabled {
				step = 5 // a sample under -race or -short; the full corpus runs otherwise
			}
			for i := 0; i < len(g.Prose); i += step {
				line := g.Prose[i]
				want := r.Prose[i*24 : i*24+24]
				e, err := tk.Encode(line, Options{AddSpecialTokens: true})
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				d1, err1 := tk.Decode(e.IDs, true)
				d2, err2 := tk.Decode(e.IDs, false)
				if err1 != nil || err2 != nil {
					t.Fatalf("decode %q: %v %v", line, err1, err2)
				}
				got := digest(e, d1, d2)
				ta.check("prose_ids", fmt.Sprintf("%q", line), got[:12], want[:12])
				ta.check("prose_all", fmt.Sprintf("%q", line), got[12:], want[12:])
			}
			for _, d := range r.Decode {
				got, err := tk.Decode(d.IDs, true)
				ta.check("decode", fmt.Sprint(d.IDs), got, d.Decoded)
				ta.check("decode_error", fmt.Sprint(d.IDs), err, nil)
				got, _ = tk.Decode(d.IDs, false)
				ta.check("decode_keep", fmt.Sprint(d.IDs), got, d.DecodedKeep)
			}
			ta.check("vocab_size", "with added", tk.VocabSize(true), r.Vocab.WithAdded)
			ta.check("vocab_size", "without added", tk.VocabSize(false), r.Vocab.WithoutAdded)
			ta.report(t)
		})
	}
}
