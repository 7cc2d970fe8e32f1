package server

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
)

// Goldens come from CPython 3.11 through testdata/gen_golden.py.

func TestAppendPyFloatGolden(t *testing.T) {
	var cases []struct {
		Bits string `json:"bits"`
		Repr string `json:"repr"`
		F32  bool   `json:"f32"`
	}
	loadGolden(t, "pyfloat.json", &cases)
	if len(cases) < 500 {
		t.Fatalf("only %d float cases", len(cases))
	}
	for _, c := range cases {
		u, err := strconv.ParseUint(c.Bits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		x := math.Float64frombits(u)
		if got := string(appendPyFloat(nil, x, 64)); got != c.Repr {
			t.Errorf("repr(%v) = %q, Python %q", x, got, c.Repr)
		}
		if c.F32 {
			// JSON output of a float32 (floatPy) must equal Python's repr of the widened value.
			got, err := appendJSONFloat(nil, float32(x), floatPy)
			if err != nil || string(got) != c.Repr {
				t.Errorf("appendJSONFloat(%v) = %q, %v; Python %q", x, got, err, c.Repr)
			}
			// floatShort must round-trip to the same float32.
			short, _ := appendJSONFloat(nil, float32(x), floatShort)
			back, err := strconv.ParseFloat(string(short), 32)
			if err != nil || float32(back) != float32(x) {
				t.Errorf("floatShort(%v) = %q does not round-trip", x, short)
			}
		}
	}
}

func TestAppendPyFloatEdges(t *testing.T) {
	for _, c := range []struct {
		x    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {-1, 64, "-1.0"}, {0.0001, 64, "0.0001"}, {0.00001, 64, "1e-05"},
		{1e16, 64, "1e+16"}, {1e15, 64, "1000000000000000.0"}, {1.5e16, 64, "1.5e+16"},
		{1e100, 64, "1e+100"}, {5e-324, 64, "5e-324"}, {math.Copysign(0, -1), 64, "-0.0"},
		{float64(float32(0.1)), 32, "0.1"}, {float64(float32(0.1)), 64, "0.10000000149011612"},
		{math.Inf(1), 64, "inf"}, {math.NaN(), 64, "nan"},
	} {
		if got := string(appendPyFloat(nil, c.x, c.bits)); got != c.want {
			t.Errorf("appendPyFloat(%v, %d) = %q, want %q", c.x, c.bits, got, c.want)
		}
	}
	if _, err := appendJSONFloat(nil, float32(math.NaN()), floatPy); err == nil {
		t.Error("NaN must not encode")
	}
	if _, err := appendFloats2(nil, [][]float32{{1}, {float32(math.Inf(-1))}}, floatShort); err == nil {
		t.Error("-Inf must not encode")
	}
}

func TestUTF8DecodeErrorSpecTable(t *testing.T) {
	// hf-inference-api.md §1.4, every row.
	for _, c := range []struct{ in, want string }{
		{"\xc3\x28", "'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"},
		{"abc\xff", "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte"},
		{"\xc0\xaf", "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte"},
		{"\xed\xa0\x80", "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"},
		{"\xe2", "'utf-8' codec can't decode byte 0xe2 in position 0: unexpected end of data"},
		{"ab\xe2\x82", "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"},
		{"ok", ""},
	} {
		if got := utf8DecodeError([]byte(c.in)); got != c.want {
			t.Errorf("utf8DecodeError(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestUTF8DecodeErrorGolden(t *testing.T) {
	var cases []struct {
		Hex string  `json:"hex"`
		Msg *string `json:"msg"`
	}
	loadGolden(t, "utf8errors.json", &cases)
	for _, c := range cases {
		b, err := hex.DecodeString(c.Hex)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if c.Msg != nil {
			want = *c.Msg
		}
		if got := utf8DecodeError(b); got != want {
			t.Errorf("utf8DecodeError(%x) = %q, Python %q", b, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"été", `"été"`}, {"<a&b>", `"<a&b>"`}, {"q\"\\", `"q\"\\"`},
		{"\n\r\t\b\f\x01\x1f\x7f", `"\n\r\t\b\f\u0001\u001f` + "\x7f\""},
		{"\u2028", "\"\u2028\""}, {"bad\xffutf8", "\"bad\ufffdutf8\""}, {"😀", `"😀"`},
	} {
		if got := string(appendJSONString(nil, c.in)); got != c.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAppendBase64Floats(t *testing.T) {
	// 1.0 = 0x3f800000 → LE 00 00 80 3f; -2.0 = 0xc0000000 → LE 00 00 00 c0.
	if got := string(appendBase64Floats(nil, []float32{1, -2})); got != `"AACAPwAAAMA="` {
		t.Errorf("got %s", got)
	}
}

func loadGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("%v (regenerate with testdata/gen_golden.py)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}
