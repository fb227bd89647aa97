package dbsvc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The client's text: as parsed (a query's components, a JSON string's
// surrogates) and as quoted in messages (as Python's json.dumps writes it, so
// that both implementations quote alike).

// shown is how many characters of the client's text a message quotes.
const shown = 64

// quote renders the client's text s for a message as Python's json.dumps
// does (ASCII only: \u escapes past 0x7e), cut after shown characters.
func quote(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			b = appendEscape(b, r)
		} else {
			b = append(b, byte(r))
		}
	}
	return cut(string(append(b, '"')))
}

// cut shortens s to shown bytes (on a rune boundary), marking the cut with …
func cut(s string) string {
	if len(s) <= shown {
		return s
	}
	i := shown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// showJSON renders a valid JSON value of the client's for a message: a string
// as quote does, anything else compact, cut.
func showJSON(raw json.RawMessage) string {
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return quote(s)
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return cut(string(raw))
	}
	return cut(b.String())
}

// unescape decodes a query component: + is a space, %XX a byte, and a %
// not followed by two hex digits stays as it is.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}

// loneSurrogate reports whether the JSON string raw escapes half of a
// surrogate pair alone (\ud800), which encoding/json turns into U+FFFD.
func loneSurrogate(raw []byte) bool {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			i++ // an escaped character: skip it
			continue
		}
		r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		if err != nil {
			return false // cannot happen in valid JSON
		}
		switch {
		case 0xD800 <= r && r < 0xDC00: // high: a low must follow
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return true
			}
			lo, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 32)
			if err != nil || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}
