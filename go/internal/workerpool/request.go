package workerpool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patternbench/patternbench/go/internal/httpjson"
)

// The service contract's limits on one request. They are stricter than
// MaxRounds and MaxSize, which bound the in-process pool.
const (
	MaxBody        = 64 << 10 // bytes of a POST body
	ServiceRounds  = 10_000_000
	ServiceMinSize = 8
	ServiceMaxSize = 1 << 20
	MaxHashed      = 1 << 30 // rounds * size of one hash task
)

// request is a validated /work request. Size is kept as given: for spin it is
// only echoed.
type request struct {
	Kernel string
	Seed   uint64
	Rounds uint64
	Size   uint64
}

// task is the kernel call q asks for. Size goes on to hash only: spin does
// not read it, and the echo in answer keeps it as the client gave it.
func (q request) task() Task {
	t := Task{Kernel: q.Kernel, Seed: q.Seed, Rounds: int(q.Rounds)}
	if q.Kernel == "hash" {
		t.Size = int(q.Size)
	}
	return t
}

// answer renders the echo of q with the kernel's output.
func (q request) answer(out string) []byte {
	b := make([]byte, 0, 128+len(out))
	b = append(b, `{"kernel":"`...)
	b = append(b, q.Kernel...) // spin or hash: nothing to escape
	b = append(b, `","seed":`...)
	b = strconv.AppendUint(b, q.Seed, 10)
	b = append(b, `,"rounds":`...)
	b = strconv.AppendUint(b, q.Rounds, 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendUint(b, q.Size, 10)
	b = append(b, `,"output":"`...)
	b = append(b, out...) // lowercase hex
	b = append(b, `"}`...)
	return b
}

// fields are the request's field names, in the order they are checked.
var fields = []string{"kernel", "seed", "rounds", "size"}

// value is one field as the client wrote it: a query parameter's decoded
// value, or a JSON value's raw text.
type value struct {
	text    string
	present bool
	json    bool
	repeats bool // a query parameter given more than once
}

// show renders v for an error message: JSON as written, a query value
// quoted; cut short if long.
func (v value) show() string {
	if v.json {
		return shorten(v.text)
	}
	return shorten(strconv.Quote(v.text))
}

// shown is how much of a client's text an error message quotes.
const shown = 64

// shorten cuts s to shown bytes (on a rune boundary) and marks the cut.
func shorten(s string) string {
	if len(s) <= shown {
		return s
	}
	i := shown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// parseQuery reads a GET's query string.
func parseQuery(raw string) (request, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return request{}, fmt.Errorf("query: %v", err)
	}
	if err := unknown(q, "query parameter"); err != nil {
		return request{}, err
	}
	get := func(name string) value {
		vs, ok := q[name]
		if !ok {
			return value{}
		}
		return value{text: vs[0], present: true, repeats: len(vs) > 1}
	}
	return validate(get)
}

// parseBody reads a POST's JSON object, at most MaxBody bytes, arriving within
// timeout, the request's deadline (os.ErrDeadlineExceeded otherwise). Keys are
// matched exactly (not case-insensitively as encoding/json does for structs)
// and each value is kept as raw JSON, so that its type can be checked and
// integers up to 2^64-1 are read exactly.
func parseBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) (request, error) {
	if r.URL.RawQuery != "" {
		return request{}, errors.New("query: a POST takes its fields from the body")
	}
	// The body must arrive within the deadline. The read deadline is cleared
	// once it has, for the connection's next request; after a failed read it
	// stays, so that net/http's attempt to discard the rest of the body fails
	// at once instead of waiting for bytes that are not coming.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // unsupported: no bound but the 64 KiB
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		w.Header()["Connection"] = []string{"close"}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return request{}, fmt.Errorf("body: larger than %d bytes", MaxBody)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return request{}, err
		}
		return request{}, errors.New(shorten("body: " + err.Error()))
	}
	_ = rc.SetReadDeadline(time.Time{})
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		if !json.Valid(body) {
			var v any
			err = json.Unmarshal(body, &v) // the syntax error, the same with any target
			return request{}, errors.New("body: not JSON: " + shorten(err.Error()))
		}
		return request{}, errors.New("body: not a JSON object but " + httpjson.Kind(body))
	}
	if obj == nil { // null decodes into a map without error
		return request{}, errors.New("body: not a JSON object but null")
	}
	if err := unknown(obj, "field"); err != nil {
		return request{}, err
	}
	return validate(func(name string) value {
		raw, ok := obj[name]
		if !ok {
			return value{}
		}
		return value{text: string(bytes.TrimSpace(raw)), present: true, json: true}
	})
}

// unknown reports the first (by name) key of m that is not a field.
func unknown[V any](m map[string]V, what string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(fields, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	return fmt.Errorf("%s: unknown %s", shorten(strconv.Quote(extra[0])), what)
}

// validate checks the fields in the contract's order, kernel, seed, rounds,
// size, and names the first invalid one.
func validate(get func(string) value) (request, error) {
	var q request
	v := get("kernel")
	switch {
	case !v.present:
		return q, errors.New("kernel: required (spin or hash)")
	case v.repeats:
		return q, errors.New("kernel: given more than once")
	}
	q.Kernel = v.text
	if v.json {
		if err := json.Unmarshal([]byte(v.text), &q.Kernel); err != nil {
			return q, fmt.Errorf("kernel: %s is not a string", v.show())
		}
	}
	if q.Kernel != "spin" && q.Kernel != "hash" {
		return q, fmt.Errorf("kernel: %s is neither spin nor hash", v.show())
	}

	var err error
	if v := get("seed"); v.present {
		if q.Seed, err = integer("seed", v, 1<<64-1); err != nil {
			return q, err
		}
	}
	v = get("rounds")
	if !v.present {
		return q, errors.New("rounds: required")
	}
	if q.Rounds, err = integer("rounds", v, ServiceRounds); err != nil {
		return q, err
	}
	v = get("size")
	switch {
	case q.Kernel == "spin":
		if v.present { // ignored, but it must still be an integer
			if q.Size, err = integer("size", v, 1<<64-1); err != nil {
				return q, err
			}
		}
	case !v.present:
		return q, errors.New("size: required for hash")
	default:
		if q.Size, err = integer("size", v, ServiceMaxSize); err != nil {
			return q, err
		}
		if q.Size < ServiceMinSize || q.Size%8 != 0 {
			return q, fmt.Errorf("size: %s is not a multiple of 8 between %d and %d", v.show(), ServiceMinSize, ServiceMaxSize)
		}
		if q.Rounds*q.Size > MaxHashed { // both bounded: no overflow
			return q, fmt.Errorf("size: %s * %d rounds is more than %d bytes to hash", v.show(), q.Rounds, MaxHashed)
		}
	}
	return q, nil
}

// integer reads v as an integer between 0 and hi: in a query decimal digits
// only, in JSON a JSON integer (not a string, float or boolean).
func integer(name string, v value, hi uint64) (uint64, error) {
	if v.repeats {
		return 0, fmt.Errorf("%s: given more than once", name)
	}
	digits := v.text
	if v.json {
		if rest, neg := strings.CutPrefix(digits, "-"); neg && isDigits(rest) {
			if n, err := strconv.ParseUint(rest, 10, 64); err == nil && n == 0 {
				return 0, nil // -0 is 0
			}
			return 0, fmt.Errorf("%s: %s is outside 0..%d", name, v.show(), hi)
		}
		if !isDigits(digits) {
			return 0, fmt.Errorf("%s: %s is not a JSON integer", name, v.show())
		}
	} else if !isDigits(digits) {
		return 0, fmt.Errorf("%s: %s is not a decimal integer", name, v.show())
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > hi {
		return 0, fmt.Errorf("%s: %s is outside 0..%d", name, v.show(), hi)
	}
	return n, nil
}

// isDigits reports whether s is one or more ASCII decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
