package server

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Python-compatible text: float repr, UnicodeDecodeError messages and str()/repr() of JSON
// values. api-inference-community bodies are produced by Python and clients compare bytes.

// appendPyFloat appends x the way Python's repr(float) prints it: the shortest digits that
// round-trip, fixed notation when 1e-4 <= |x| < 1e16 (always with a decimal point), else
// d.ddde±XX with at least two exponent digits. bitSize 32 picks the shortest digits that
// round-trip through float32 instead (TEI/serde print f32 that way); the layout is the same.
// NaN and ±Inf print as nan, inf, -inf (Python's str); JSON writers reject them earlier.
func appendPyFloat(dst []byte, x float64, bitSize int) []byte {
	switch {
	case math.IsNaN(x):
		return append(dst, "nan"...)
	case math.IsInf(x, 1):
		return append(dst, "inf"...)
	case math.IsInf(x, -1):
		return append(dst, "-inf"...)
	case x == 0:
		if math.Signbit(x) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	if ax := math.Abs(x); ax >= 1e-4 && ax < 1e16 {
		// Python's fixed-notation range: strconv's shortest 'f' digits are the same digits,
		// laid out the same way, bar the ".0" Python adds to whole numbers. This is the path
		// nearly every embedding value takes.
		n := len(dst)
		dst = strconv.AppendFloat(dst, x, 'f', -1, bitSize)
		for _, c := range dst[n:] {
			if c == '.' {
				return dst
			}
		}
		return append(dst, '.', '0')
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], x, 'e', -1, bitSize) // -d.ddde±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		dst = append(dst, '-')
	}
	ePos := 0
	for ePos < len(e) && e[ePos] != 'e' {
		ePos++
	}
	mant := e[:ePos]
	exp, _ := strconv.Atoi(string(e[ePos+1:]))
	// digits without the decimal point
	var dbuf [24]byte
	digits := append(dbuf[:0], mant[0])
	if len(mant) > 2 {
		digits = append(digits, mant[2:]...)
	}
	decpt := exp + 1 // value = 0.d1d2... × 10^decpt, Python's convention
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			dst = append(dst, '0', '.')
			for i := 0; i < -decpt; i++ {
				dst = append(dst, '0')
			}
			dst = append(dst, digits...)
		case decpt >= len(digits):
			dst = append(dst, digits...)
			for i := len(digits); i < decpt; i++ {
				dst = append(dst, '0')
			}
			dst = append(dst, '.', '0')
		default:
			dst = append(dst, digits[:decpt]...)
			dst = append(dst, '.')
			dst = append(dst, digits[decpt:]...)
		}
		return dst
	}
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}

// pyFloatString is appendPyFloat for float64 values as a string (Python's str(float)).
func pyFloatString(x float64) string { return string(appendPyFloat(nil, x, 64)) }

// utf8DecodeError returns the text of the UnicodeDecodeError that CPython's
// bytes.decode("utf-8") raises for b, or "" when b is valid UTF-8. It follows the decoder in
// CPython's Objects/stringlib/codecs.h: the error range starts at the first bad byte and
// covers the bytes that formed a valid prefix, so the message names one byte
// ("byte 0xc3 in position 0") or a range ("bytes in position 2-3").
func utf8DecodeError(b []byte) string {
	if utf8.Valid(b) {
		return ""
	}
	isCont := func(c byte) bool { return c >= 0x80 && c <= 0xbf }
	i := 0
	for i < len(b) {
		c := b[i]
		if c < 0x80 {
			i++
			continue
		}
		n := len(b) - i // bytes left
		var width, bad int
		var reason string
		switch {
		case c < 0xc2 || c > 0xf4:
			return decodeErrText(b, i, i+1, "invalid start byte")
		case c < 0xe0:
			width = 2
			if n < 2 {
				return decodeErrText(b, i, len(b), "unexpected end of data")
			}
			if !isCont(b[i+1]) {
				bad, reason = 1, "invalid continuation byte"
			}
		case c < 0xf0:
			width = 3
			second := func(c2 byte) bool {
				return isCont(c2) && !(c == 0xe0 && c2 < 0xa0) && !(c == 0xed && c2 >= 0xa0)
			}
			switch {
			case n >= 2 && !second(b[i+1]):
				bad, reason = 1, "invalid continuation byte"
			case n < 3:
				return decodeErrText(b, i, len(b), "unexpected end of data")
			case !isCont(b[i+2]):
				bad, reason = 2, "invalid continuation byte"
			}
		default:
			width = 4
			second := func(c2 byte) bool {
				return isCont(c2) && !(c == 0xf0 && c2 < 0x90) && !(c == 0xf4 && c2 >= 0x90)
			}
			switch {
			case n >= 2 && !second(b[i+1]):
				bad, reason = 1, "invalid continuation byte"
			case n >= 3 && !isCont(b[i+2]):
				bad, reason = 2, "invalid continuation byte"
			case n < 4:
				return decodeErrText(b, i, len(b), "unexpected end of data")
			case !isCont(b[i+3]):
				bad, reason = 3, "invalid continuation byte"
			}
		}
		if bad > 0 {
			return decodeErrText(b, i, i+bad, reason)
		}
		i += width
	}
	return "" // unreachable: utf8.Valid said otherwise
}

func decodeErrText(b []byte, start, end int, reason string) string {
	var sb strings.Builder
	if end == start+1 {
		sb.WriteString("'utf-8' codec can't decode byte 0x")
		sb.WriteString(hex2(b[start]))
		sb.WriteString(" in position ")
		sb.WriteString(strconv.Itoa(start))
	} else {
		sb.WriteString("'utf-8' codec can't decode bytes in position ")
		sb.WriteString(strconv.Itoa(start))
		sb.WriteByte('-')
		sb.WriteString(strconv.Itoa(end - 1))
	}
	sb.WriteString(": ")
	sb.WriteString(reason)
	return sb.String()
}

func hex2(c byte) string {
	const h = "0123456789abcdef"
	return string([]byte{h[c>>4], h[c&15]})
}

// pyStr renders a parsed JSON value as Python's str() of the object json.loads builds.
// pydantic quotes it in "received `...`" messages. Best effort where Python and Go differ
// (lone surrogates were already replaced by U+FFFD while parsing).
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var sb strings.Builder
	writePyRepr(&sb, v)
	return sb.String()
}

func writePyRepr(sb *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		sb.WriteString("None")
	case bool:
		if v {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case string:
		writePyStrRepr(sb, v)
	case pyInt:
		sb.WriteString(string(v))
	case float64:
		sb.Write(appendPyFloat(nil, v, 64))
	case []any:
		sb.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				sb.WriteString(", ")
			}
			writePyRepr(sb, e)
		}
		sb.WriteByte(']')
	case *object:
		sb.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				sb.WriteString(", ")
			}
			writePyStrRepr(sb, k)
			sb.WriteString(": ")
			writePyRepr(sb, v.vals[k])
		}
		sb.WriteByte('}')
	}
}

// pyRepr is Python's repr() of a str.
func pyRepr(s string) string {
	var sb strings.Builder
	writePyStrRepr(&sb, s)
	return sb.String()
}

// writePyStrRepr writes repr(s): single quotes unless s holds ' and no ", escapes for the
// quote, backslash, \t \n \r, and \xNN/\uNNNN/\UNNNNNNNN for non-printable characters.
func writePyStrRepr(sb *strings.Builder, s string) {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	sb.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == ' ' || unicode.IsPrint(r):
			sb.WriteRune(r)
		case r < 0x100:
			sb.WriteString(`\x`)
			sb.WriteString(hex2(byte(r)))
		case r < 0x10000:
			sb.WriteString(`\u`)
			sb.WriteString(hex2(byte(r >> 8)))
			sb.WriteString(hex2(byte(r)))
		default:
			sb.WriteString(`\U`)
			sb.WriteString(hex2(byte(r >> 24)))
			sb.WriteString(hex2(byte(r >> 16)))
			sb.WriteString(hex2(byte(r >> 8)))
			sb.WriteString(hex2(byte(r)))
		}
	}
	sb.WriteByte(quote)
}

// pyTypeName is Python's type(x).__name__ for a parsed JSON value.
func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case pyInt:
		return "int"
	case float64:
		return "float"
	case []any:
		return "list"
	default:
		return "dict"
	}
}

// countChars is routes.get_input_characters: code points of every string, walking lists and
// object values.
func countChars(v any) int {
	switch v := v.(type) {
	case string:
		return utf8.RuneCountInString(v)
	case []any:
		n := 0
		for _, e := range v {
			n += countChars(e)
		}
		return n
	case *object:
		n := 0
		for _, k := range v.keys {
			n += countChars(v.vals[k])
		}
		return n
	}
	return 0
}
