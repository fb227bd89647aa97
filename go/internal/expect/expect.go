// Package expect compares a decoded JSON answer with the one a pattern's
// test vectors expect (systems/<pattern>/vectors.json), as bench/verify.py
// does: exactly, except that the string "<any-string>" in the expected answer
// stands for any non-empty string (free-text error messages).
package expect

import "reflect"

// AnyString in an expected answer matches any non-empty string.
const AnyString = "<any-string>"

// Match reports whether got, decoded JSON, is the answer want describes.
func Match(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok || !Match(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !Match(w[i], g[i]) {
				return false
			}
		}
		return true
	case string:
		if w == AnyString {
			s, ok := got.(string)
			return ok && s != ""
		}
		return got == want
	default:
		return reflect.DeepEqual(want, got)
	}
}
