// Package contract holds what the fan-out service and its backend simulator
// agree on beyond HTTP itself (systems/fanout/README.md), so that the two
// programs cannot drift apart on it.
package contract

// ValidID reports whether s matches ^[A-Za-z0-9_-]{1,64}$, the shape of item
// ids and backend names. It is hand-written because it sits on the hot path of
// every request and needs no regexp machinery.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
