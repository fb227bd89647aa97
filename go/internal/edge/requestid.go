package edge

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// RequestIDHeader carries a call's id, in both directions; it goes to the core as gRPC
// metadata (requestIDKey).
const RequestIDHeader = "X-Request-ID"

// ClientIDHeader names the client, for rate limiting, when auth is off.
const ClientIDHeader = "X-Client-ID"

// requestIDKey is the id's gRPC metadata key.
const requestIDKey = "x-request-id"

// The header keys in canonical form, for the header maps.
var (
	canonicalRequestID = http.CanonicalHeaderKey(RequestIDHeader)
	canonicalClientID  = http.CanonicalHeaderKey(ClientIDHeader)
)

// maxIDLength bounds the ids taken from a client: they go into logs, metadata and keys.
const maxIDLength = 128

// validID reports whether s is 1 to maxIDLength characters of [A-Za-z0-9._:-].
func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// requestID is the request's id when it sent a valid one, else a new one.
func requestID(r *http.Request) string {
	if v := r.Header[canonicalRequestID]; len(v) == 1 && validID(v[0]) {
		return v[0]
	}
	return newID()
}

// newID is 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// clientID is the rate limiter's key of an unauthenticated request: its X-Client-ID when valid,
// else "anonymous".
func clientID(r *http.Request) string {
	if v := r.Header[canonicalClientID]; len(v) == 1 && validID(v[0]) {
		return v[0]
	}
	return anonymous
}

// anonymous is the client id of a request that names none.
const anonymous = "anonymous"
