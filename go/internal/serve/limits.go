package serve

// The limits on a request's head and the answers to malformed requests, the
// same numbers and words as systems/serving.py; the contracts' section
// "Malformed and oversized requests" (systems/*/README.md) is the reference.
//
// Two layers enforce them. Guard wraps every endpoint's handler and refuses a
// request whose head net/http read but which breaks a limit. net/http itself
// answers what it cannot read (a garbled request line, a bad Content-Length,
// a head over MaxHeaderBytes, an unknown HTTP major version, a bad Host, an
// Expect it does not know) in plain text, straight to the connection, before
// any handler runs: guardedConn recognises those answers as they are written
// and writes the envelope in their place.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/patternbench/patternbench/go/internal/httpjson"
)

const (
	// MaxTargetBytes: a longer request target (path and query) is answered 414.
	MaxTargetBytes = 8192
	// MaxTargetReadBytes: a target longer than this is answered 431, as a head
	// too large to read (aiohttp's max_line_size in the Python services).
	MaxTargetReadBytes = 1 << 20
	// MaxHeaderFields: more header fields (Host included) is answered 431.
	MaxHeaderFields = 100
	// MaxHeaderBytes: so is a header section whose names and values add up
	// to more bytes than this.
	MaxHeaderBytes = 16384
	// MaxHeadReadBytes is the most net/http reads of one request head (line,
	// fields and line ends) before answering 431: room for the longest target
	// read above and a full header section, with 15 KiB to spare.
	MaxHeadReadBytes = MaxTargetReadBytes + 32<<10

	// HeaderTimeout and IdleTimeout are the server's ReadHeaderTimeout and
	// IdleTimeout. The idle time-out is longer than any client here keeps an
	// idle connection (90 s), so a client never reuses one being closed.
	HeaderTimeout = 5 * time.Second
	IdleTimeout   = 120 * time.Second
	// HeaderTimeoutEnv and IdleTimeoutEnv override them (seconds), for tests;
	// the Python scaffold reads the same variables.
	HeaderTimeoutEnv = "PATTERNBENCH_HEADER_TIMEOUT_S"
	IdleTimeoutEnv   = "PATTERNBENCH_IDLE_TIMEOUT_S"
)

// netHTTPSlop is what net/http reads beyond MaxHeaderBytes ("bufio slop").
const netHTTPSlop = 4096

// A refusal is a fixed answer: status and rendered envelope.
type refusal struct {
	status int
	body   []byte
}

func refuse(status int, code, message string) *refusal {
	return &refusal{status, httpjson.Envelope(code, message)}
}

// The messages are the Python scaffold's, word for word.
var (
	badRequest       = refuse(http.StatusBadRequest, "bad_request", "malformed request")
	badTarget        = refuse(http.StatusBadRequest, "bad_request", "the request target must be a path (origin-form or absolute-form)")
	transferEncoding = refuse(http.StatusBadRequest, "bad_request", "Transfer-Encoding is not accepted: send the body with a Content-Length")
	expectation      = refuse(http.StatusExpectationFailed, "expectation_failed", "the only expectation understood is 100-continue")
	targetTooLong    = refuse(http.StatusRequestURITooLong, "uri_too_long", fmt.Sprintf("the request target is over %d bytes", MaxTargetBytes))
	headersTooLarge  = refuse(http.StatusRequestHeaderFieldsTooLarge, "header_fields_too_large",
		fmt.Sprintf("at most %d header fields of %d bytes in all, and a request target of at most %d bytes",
			MaxHeaderFields, MaxHeaderBytes, MaxTargetReadBytes))
	unknownMethod       = refuse(http.StatusNotImplemented, "not_implemented", "unknown method")
	versionNotSupported = refuse(http.StatusHTTPVersionNotSupported, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served")
)

// Guard answers a request that breaks a limit with the envelope and
// Connection: close, and passes any other to next. Run wraps every endpoint's
// handler in it; refused requests never reach the service (nor its metrics).
func Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := check(r); ref != nil {
			w.Header()["Connection"] = []string{"close"}
			httpjson.Write(w, ref.status, ref.body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check is the refusal owed to r, or nil. net/http has already refused what
// it cannot read; the order of the rest is the Python scaffold's.
func check(r *http.Request) *refusal {
	if r.ProtoMajor != 1 || r.ProtoMinor > 1 {
		return versionNotSupported
	}
	switch r.Method {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH":
	case "CONNECT":
		return badTarget // no target here is an authority
	default:
		return unknownMethod
	}
	fields, size := 0, 0
	if r.Host != "" { // net/http moves the Host field out of r.Header
		fields, size = 1, len("Host")+len(r.Host)
	}
	for name, values := range r.Header {
		for _, v := range values {
			fields++
			size += len(name) + len(v)
		}
	}
	if fields > MaxHeaderFields || size > MaxHeaderBytes {
		return headersTooLarge
	}
	target := r.RequestURI
	if len(target) > MaxTargetBytes {
		if len(target) > MaxTargetReadBytes {
			return headersTooLarge
		}
		return targetTooLong
	}
	if !strings.HasPrefix(target, "/") && !isAbsoluteForm(target) {
		return badTarget
	}
	for i := 0; i < len(target); i++ {
		if target[i] >= 0x80 { // aiohttp's parser refuses a target that is not ASCII
			return badRequest
		}
	}
	if len(r.TransferEncoding) > 0 {
		return transferEncoding
	}
	return nil
}

// isAbsoluteForm reports whether target starts with scheme "://".
func isAbsoluteForm(target string) bool {
	scheme, _, ok := strings.Cut(target, "://")
	if !ok || scheme == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		letter := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// timeouts are the header-read and idle time-outs, from the environment when
// set there.
func timeouts() (header, idle time.Duration, err error) {
	if header, err = timeoutFromEnv(HeaderTimeoutEnv, HeaderTimeout); err != nil {
		return 0, 0, err
	}
	idle, err = timeoutFromEnv(IdleTimeoutEnv, IdleTimeout)
	return header, idle, err
}

func timeoutFromEnv(name string, fallback time.Duration) (time.Duration, error) {
	text, ok := os.LookupEnv(name)
	if !ok {
		return fallback, nil
	}
	s, err := strconv.ParseFloat(text, 64)
	if err != nil || !(s > 0) || s > 1e6 {
		return 0, fmt.Errorf("%s must be a positive number of seconds, got %q", name, text)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// guardedListener hands out guardedConns.
type guardedListener struct{ net.Listener }

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c}, nil
}

// guardedConn writes the envelope in place of net/http's own plain-text
// answers to requests it could not read. net/http writes each of those in one
// Write straight to the connection, as its last bytes there: a status line and
// exactly plainErrorHeaders, which no handler's answer can contain (net/http
// sorts a handler's fields and always adds Date). The Expect refusal (417) is
// an empty answer net/http writes without a handler. Every other write passes
// through: a 2xx or 3xx after one byte compare, a 4xx or 5xx after a search of
// its first bytes.
//
// A head still incomplete at the header time-out is closed unanswered, as the
// Python scaffold does: net/http does so when the time-out falls between two
// lines of the head, but answers 400 when it falls inside one, and that 400
// (after a read that timed out, with no byte read since) is dropped.
type guardedConn struct {
	net.Conn
	timedOut atomic.Bool // the last read timed out (net/http's background read may set it)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.timedOut.Store(false)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.timedOut.Store(true)
	}
	return n, err
}

const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// The status line of net/http's 417, in the version of the request it refuses.
var expectationFailedLines = [][]byte{
	[]byte("HTTP/1.1 417 Expectation Failed\r\n"),
	[]byte("HTTP/1.0 417 Expectation Failed\r\n"),
}

func (c *guardedConn) Write(p []byte) (int, error) {
	if len(p) > 12 && (p[9] == '4' || p[9] == '5') && bytes.HasPrefix(p, []byte("HTTP/1.")) {
		if ref := netHTTPRefusal(p); ref != nil {
			if ref == badRequest && c.timedOut.Load() {
				return len(p), nil // the header time-out: closed unanswered
			}
			if _, err := c.Conn.Write(rawAnswer(ref)); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's half-close (after a 431) working through the
// wrapper.
func (c *guardedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// netHTTPRefusal maps one of net/http's own answers to the contract's, or
// returns nil for any other write.
func netHTTPRefusal(p []byte) *refusal {
	for _, line := range expectationFailedLines {
		if bytes.HasPrefix(p, line) {
			return expectation
		}
	}
	head := p
	if len(head) > 512 {
		head = head[:512] // net/http's texts are short; a handler's body is not looked at
	}
	if !bytes.Contains(head, []byte(plainErrorHeaders)) {
		return nil
	}
	switch string(p[9:12]) {
	case "431":
		return headersTooLarge
	case "501": // "Unsupported transfer encoding"
		return transferEncoding
	case "505":
		return versionNotSupported
	default:
		return badRequest
	}
}

// rawAnswer is a whole HTTP/1.1 answer carrying ref, for the connection.
func rawAnswer(ref *refusal) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		ref.status, http.StatusText(ref.status), len(ref.body), ref.body)
}
