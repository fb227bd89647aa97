// Package httpjson writes the JSON answers every service here shares: a body
// in one write with its length, and the contracts' error envelope
// {"error": {"code": "...", "message": "..."}}.
package httpjson

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Write sends a complete JSON answer in one write, with its length, so that
// net/http needs no chunking.
func Write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Envelope renders the error envelope with encoding/json, so that messages
// quoting client input are escaped correctly.
func Envelope(code, message string) []byte {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e.Error.Code, e.Error.Message = code, message
	b, err := json.Marshal(&e)
	if err != nil {
		panic(err) // two strings always marshal
	}
	return b
}

// RetryAfterOne is the value of `Retry-After: 1` that 503 refusals carry, shared so that a
// burst of refusals allocates no header value (net/http only reads it).
var RetryAfterOne = []string{"1"}

// Kind names the kind of the valid JSON value b, by its first byte after any
// white space ("an object", "an array", "a number" ...), for a message.
func Kind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
