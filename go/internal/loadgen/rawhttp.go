package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errMalformed is an answer that is not HTTP/1.x as rawSession reads it; it
// counts as a connection error, and the connection is dropped.
var errMalformed = errors.New("malformed HTTP answer")

// rawHTTPTarget is loadgen's own HTTP/1.1 client, the default: each worker
// owns one keep-alive TCP connection and does the exchange itself, write the
// request, read the answer, with no goroutine besides the worker and no
// allocation per request. net/http's transport, by contrast, runs a reader
// and a writer goroutine per connection and hands every request and answer
// between three goroutines, and it dials a new connection whenever no idle
// one is at hand at that instant, which under open-loop bursts snowballs
// into thousands of connections (4096 within a second at 20k req/s on one
// core, where this client keeps up at 60k). Connections are thus exactly
// the workers, whose number grows only when more requests are really in
// flight at once.
type rawHTTPTarget struct {
	addr    string
	timeout time.Duration
	wire    *wireCounter
	tmpl    *urlTemplate
	body    *textTemplate // the body, when it has placeholders; else in suffix
	head    bool          // HEAD: answers have no body
	retry   bool          // idempotent method: a stale keep-alive connection may be retried
	prefix  []byte        // "METHOD "
	suffix  []byte        // " HTTP/1.1\r\nHost: …\r\n…\r\n\r\nbody"; with a varying body, up to "Content-Length: "
	tail    []byte        // with body: "\r\n" + the other headers + "\r\n", before the body
	fixed   []byte        // the whole request when nothing has a placeholder

	mu       sync.Mutex
	sessions []*rawSession
}

func newRawHTTPTarget(cfg *Config, wire *wireCounter) *rawHTTPTarget {
	t := &rawHTTPTarget{
		addr:    cfg.target.host,
		timeout: cfg.Timeout,
		wire:    wire,
		tmpl:    cfg.target,
		head:    cfg.Method == "HEAD",
		prefix:  []byte(cfg.Method + " "),
	}
	switch cfg.Method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		t.retry = true
	}
	host, userAgent := cfg.target.host, "patternbench-loadgen"
	var extra []byte
	for _, h := range cfg.Headers {
		switch {
		case strings.EqualFold(h.Key, "Host"):
			host = h.Value
		case strings.EqualFold(h.Key, "User-Agent"):
			userAgent = h.Value
		default:
			extra = append(extra, h.Key+": "+h.Value+"\r\n"...)
		}
	}
	s := " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + userAgent + "\r\n"
	if len(cfg.body.ranges) > 0 {
		// The length changes with the draw: written per request, between
		// suffix and tail.
		t.body = cfg.body
		t.suffix = []byte(s + "Content-Length: ")
		t.tail = append(append([]byte("\r\n"), extra...), "\r\n"...)
		return t
	}
	switch cfg.Method {
	case "POST", "PUT", "PATCH": // as net/http: these say their length even when 0
		s += "Content-Length: " + strconv.Itoa(len(cfg.Body)) + "\r\n"
	default:
		if cfg.Body != "" {
			s += "Content-Length: " + strconv.Itoa(len(cfg.Body)) + "\r\n"
		}
	}
	t.suffix = append(append(append([]byte(s), extra...), "\r\n"...), cfg.Body...)
	if cfg.space == 1 {
		t.fixed = t.build(nil, 0)
	}
	return t
}

// build appends the request for draw to b: the URL's placeholders take the
// low digits of draw, the body's the rest (see textTemplate.appendTo).
func (t *rawHTTPTarget) build(b []byte, draw uint64) []byte {
	b = append(b, t.prefix...)
	b, draw = t.tmpl.appendTo(b, draw)
	b = append(b, t.suffix...)
	if t.body == nil {
		return b
	}
	b = strconv.AppendInt(b, int64(t.body.size(draw)), 10)
	b = append(b, t.tail...)
	b, _ = t.body.appendTo(b, draw)
	return b
}

func (t *rawHTTPTarget) session(int) session {
	s := &rawSession{t: t}
	t.mu.Lock()
	t.sessions = append(t.sessions, s)
	t.mu.Unlock()
	return s
}

// close closes every worker's connection; the workers have stopped.
func (t *rawHTTPTarget) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.sessions {
		s.drop()
	}
}

// rawSession is one worker's connection.
type rawSession struct {
	t    *rawHTTPTarget
	conn net.Conn
	br   *bufio.Reader
	wbuf []byte
}

// readBuffer is big enough for any sane status line and header, and reads a
// large body in few system calls.
const readBuffer = 16 << 10

func (s *rawSession) do(ctx context.Context, draw uint64, _ *msgLog) string {
	req := s.t.fixed
	if req == nil {
		s.wbuf = s.t.build(s.wbuf[:0], draw)
		req = s.wbuf
	}
	deadline := time.Now().Add(s.t.timeout)
	for attempt := 0; ; attempt++ {
		fresh := s.conn == nil
		if fresh {
			if err := s.dial(ctx, deadline); err != nil {
				return netErrorKind(err)
			}
		}
		code, retry, err := s.exchange(req, deadline, !fresh && s.t.retry)
		if err == nil {
			return statusKind(code)
		}
		if !retry || attempt > 0 {
			return netErrorKind(err)
		}
	}
}

// connect opens the connection ahead of the first request.
func (s *rawSession) connect(ctx context.Context) error {
	return s.dial(ctx, time.Now().Add(s.t.timeout))
}

func (s *rawSession) dial(ctx context.Context, deadline time.Time) error {
	c, err := (&net.Dialer{Deadline: deadline}).DialContext(ctx, "tcp", s.t.addr)
	if err != nil {
		return err
	}
	s.conn = s.t.wire.wrap(c)
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.conn, readBuffer)
	} else {
		s.br.Reset(s.conn)
	}
	return nil
}

// exchange sends req and reads the whole answer. On error the connection is
// dropped, and retry says whether the request may be sent again on a new
// one: it may (an idempotent request on a connection that had been idle)
// and the server closed the connection before answering a byte, as it does
// when it times an idle connection out; net/http retries the same way.
func (s *rawSession) exchange(req []byte, deadline time.Time, mayRetry bool) (code int, retry bool, err error) {
	if err := s.conn.SetDeadline(deadline); err != nil {
		s.drop()
		return 0, false, err
	}
	if _, err := s.conn.Write(req); err != nil {
		stale := mayRetry && !errors.Is(err, os.ErrDeadlineExceeded)
		s.drop()
		return 0, stale, err
	}
	code, keepAlive, started, err := s.readAnswer()
	if err != nil {
		stale := mayRetry && !started && !errors.Is(err, os.ErrDeadlineExceeded)
		s.drop()
		return 0, stale, err
	}
	if !keepAlive {
		s.drop()
	}
	return code, false, nil
}

func (s *rawSession) drop() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Header names that change how an answer is read.
var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrConnection       = []byte("connection")
	tokChunked          = []byte("chunked")
	tokClose            = []byte("close")
	tokKeepAlive        = []byte("keep-alive")
)

// readAnswer reads one answer, skipping interim 1xx ones, and discards its
// body: by Content-Length, chunked, or (neither) until the server closes.
// started is true once any byte of the answer has arrived.
func (s *rawSession) readAnswer() (code int, keepAlive, started bool, err error) {
	for {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			return 0, false, len(line) > 0, eofIsError(err)
		}
		started = true
		// HTTP/1.x NNN reason
		if len(line) < 14 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return 0, false, true, errMalformed
		}
		code = 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return 0, false, true, errMalformed
			}
			code = code*10 + int(c-'0')
		}
		keepAlive = line[7] != '0' // HTTP/1.0 closes unless told otherwise
		length, chunked := int64(-1), false
		for {
			line, err = s.br.ReadSlice('\n')
			if err != nil {
				if errors.Is(err, bufio.ErrBufferFull) {
					err = errMalformed
				}
				return 0, false, true, eofIsError(err)
			}
			if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
				break // end of the header
			}
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return 0, false, true, errMalformed
			}
			name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
			switch {
			case bytes.EqualFold(name, hdrContentLength):
				n, perr := strconv.ParseInt(string(value), 10, 64)
				if perr != nil || n < 0 {
					return 0, false, true, errMalformed
				}
				length = n
			case bytes.EqualFold(name, hdrTransferEncoding):
				chunked = containsFold(value, tokChunked)
			case bytes.EqualFold(name, hdrConnection):
				if containsFold(value, tokClose) {
					keepAlive = false
				} else if containsFold(value, tokKeepAlive) {
					keepAlive = true
				}
			}
		}
		switch {
		case code == 101:
			return 0, false, true, errMalformed // nobody asked to switch protocols
		case code < 200:
			continue // 100 Continue and friends: the real answer follows
		case s.t.head || code == 204 || code == 304:
			return code, keepAlive, true, nil
		case chunked:
			return code, keepAlive, true, s.discardChunked()
		case length >= 0:
			_, err = s.br.Discard(int(length))
			return code, keepAlive, true, eofIsError(err)
		default: // the body ends when the connection does
			_, err = io.Copy(io.Discard, s.br)
			return code, false, true, err
		}
	}
}

// discardChunked reads a chunked body and its trailer.
func (s *rawSession) discardChunked() error {
	for {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			return eofIsError(err)
		}
		size, digits := int64(0), 0
		for _, c := range line {
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v = c - 'A' + 10
			default:
				v = 0xff
			}
			if v == 0xff {
				break
			}
			if digits++; digits > 15 {
				return errMalformed
			}
			size = size<<4 | int64(v)
		}
		if digits == 0 {
			return errMalformed
		}
		if size == 0 { // the trailer, up to an empty line
			for {
				line, err := s.br.ReadSlice('\n')
				if err != nil {
					return eofIsError(err)
				}
				if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
					return nil
				}
			}
		}
		if _, err := s.br.Discard(int(size)); err != nil {
			return eofIsError(err)
		}
		crlf, err := s.br.ReadSlice('\n')
		if err != nil {
			return eofIsError(err)
		}
		if len(crlf) > 2 || (len(crlf) == 2 && crlf[0] != '\r') {
			return errMalformed
		}
	}
}

// eofIsError turns the end of the stream in the middle of an answer into an
// error that says so.
func eofIsError(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// netErrorKind classifies a failed dial or exchange.
func netErrorKind(err error) string {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return KindTimeout
	}
	return KindConnection
}

// containsFold reports whether ASCII token tok (lower case) occurs in v,
// ignoring case.
func containsFold(v, tok []byte) bool {
	for i := 0; i+len(tok) <= len(v); i++ {
		if bytes.EqualFold(v[i:i+len(tok)], tok) {
			return true
		}
	}
	return false
}
