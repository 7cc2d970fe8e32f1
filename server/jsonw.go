package server

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// Append-style JSON writing. The output matches Python's json.dumps(ensure_ascii=False,
// separators=(",", ":")), which Starlette uses: compact, non-ASCII and U+2028/9 written as
// is, no HTML escaping, floats always with a decimal point or an exponent. Writers append to
// a caller-owned buffer so handlers can pool it.

// errNonFinite is returned when an output holds NaN or ±Inf, which JSON cannot carry
// (Starlette's allow_nan=False raises too; the server answers 500 "unknown error").
var errNonFinite = errors.New("server: output holds NaN or Inf")

// floatMode picks how floats are printed.
type floatMode int

const (
	// floatPy widens float32 to float64 and prints Python's repr: byte-identical to what
	// numpy's .tolist() + json.dumps produce in the Python containers.
	floatPy floatMode = 64
	// floatShort prints the shortest digits that round-trip through float32, as TEI (serde)
	// does: about half the bytes of floatPy for the same values.
	floatShort floatMode = 32
)

func appendJSONString(dst []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				// Invalid UTF-8 (e.g. a byte-level token cut mid-character): replace it,
				// like Rust's from_utf8_lossy, so the body stays valid JSON.
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendJSONFloat(dst []byte, x float32, m floatMode) ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, errNonFinite
	}
	return appendPyFloat(dst, f, int(m)), nil
}

func appendFloats(dst []byte, v []float32, m floatMode) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendJSONFloat(dst, x, m); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func appendFloats2(dst []byte, v [][]float32, m floatMode) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, row := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendFloats(dst, row, m); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func appendFloats3(dst []byte, v [][][]float32, m floatMode) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, row := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendFloats2(dst, row, m); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendBase64Floats writes v as OpenAI's base64 encoding: little-endian float32 bytes,
// standard alphabet with padding, in a JSON string.
func appendBase64Floats(dst []byte, v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, raw)
	return append(dst, '"')
}

func appendInt(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }

// appendPyJSON writes a parsed JSON value like json.dumps would (tests compare normalised
// inputs with Python's through it; NaN/Inf print as Python's NaN/Infinity).
func appendPyJSON(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if v {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case string:
		return appendJSONString(dst, v)
	case pyInt:
		return append(dst, v...)
	case float64:
		switch {
		case math.IsNaN(v):
			return append(dst, "NaN"...)
		case math.IsInf(v, 1):
			return append(dst, "Infinity"...)
		case math.IsInf(v, -1):
			return append(dst, "-Infinity"...)
		}
		return appendPyFloat(dst, v, 64)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendPyJSON(dst, e)
		}
		return append(dst, ']')
	case *object:
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendPyJSON(dst, v.vals[k])
		}
		return append(dst, '}')
	}
	return dst
}
