package program

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeLiteral returns the value of a JavaScript string literal ('…' or
// "…") or of a template literal without substitutions (`…`), given its source
// text with the delimiters. Escape sequences are decoded as the engine does,
// so `import("npm:\u0065vil")` yields "npm:evil". ok is false if raw is not
// such a literal. A lone surrogate, which a Go string cannot hold, becomes
// U+FFFD.
func decodeLiteral(raw string) (value string, ok bool) {
	if len(raw) < 2 {
		return "", false
	}
	q := raw[0]
	if (q != '"' && q != '\'' && q != '`') || raw[len(raw)-1] != q {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if q == '`' {
		// A template's cooked value has every line terminator sequence
		// normalised to "\n" (raw "\r\n" and "\r").
		body = strings.ReplaceAll(body, "\r\n", "\n")
		body = strings.ReplaceAll(body, "\r", "\n")
	}
	if !strings.Contains(body, `\`) {
		return body, true
	}
	var units []uint16 // UTF-16, so escaped surrogate pairs combine
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(body[i:])
			units = utf16.AppendRune(units, r)
			i += size
			continue
		}
		i++
		if i >= len(body) {
			return "", false
		}
		c = body[i]
		i++
		switch c {
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 't':
			units = append(units, '\t')
		case 'b':
			units = append(units, '\b')
		case 'f':
			units = append(units, '\f')
		case 'v':
			units = append(units, '\v')
		case '\r': // line continuation: "\\\r\n" or "\\\r"
			if i < len(body) && body[i] == '\n' {
				i++
			}
		case '\n':
		case 'x':
			v, n := hexValue(body[i:], 2, 2)
			if n != 2 {
				return "", false
			}
			units = append(units, uint16(v))
			i += n
		case 'u':
			if i < len(body) && body[i] == '{' {
				end := strings.IndexByte(body[i:], '}')
				if end < 2 {
					return "", false
				}
				v, n := hexValue(body[i+1:i+end], 1, end-1)
				if n != end-1 || v > utf8.MaxRune {
					return "", false
				}
				units = utf16.AppendRune(units, rune(v))
				i += end + 1
				continue
			}
			v, n := hexValue(body[i:], 4, 4)
			if n != 4 {
				return "", false
			}
			units = append(units, uint16(v))
			i += n
		case '0', '1', '2', '3', '4', '5', '6', '7':
			// \0, or a legacy octal escape (a SyntaxError in a module,
			// which deno will report; decoded here as a script would be).
			j := i - 1
			limit := j + 3
			if c > '3' {
				limit = j + 2
			}
			for i < len(body) && i < limit && body[i] >= '0' && body[i] <= '7' {
				i++
			}
			v, _ := strconv.ParseUint(body[j:i], 8, 16)
			units = append(units, uint16(v))
		default:
			// Any other escaped character stands for itself, including
			// U+2028 and U+2029 (which are line continuations).
			r, size := utf8.DecodeRuneInString(body[i-1:])
			i += size - 1
			if r == '\u2028' || r == '\u2029' {
				continue
			}
			units = utf16.AppendRune(units, r)
		}
	}
	return string(utf16.Decode(units)), true
}

// hexValue parses between min and max hex digits at the start of s and
// returns the value and the number of digits used.
func hexValue(s string, minDigits, maxDigits int) (uint64, int) {
	var v uint64
	n := 0
	for n < len(s) && n < maxDigits {
		d, ok := hexDigit(s[n])
		if !ok {
			break
		}
		v = v<<4 | uint64(d)
		if v > utf8.MaxRune {
			return v, n + 1 // too large; callers reject it
		}
		n++
	}
	if n < minDigits {
		return 0, n
	}
	return v, n
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
