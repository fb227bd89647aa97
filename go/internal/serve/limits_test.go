package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envelope is the contracts' error body.
type envelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestGuardRefusesWhatBreaksALimit(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	fields := func(n, size int) http.Header {
		h := http.Header{}
		for i := 0; i < n; i++ {
			h.Add("X-F"+strconv.Itoa(i), strings.Repeat("v", size))
		}
		return h
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		status int
		code   string
	}{
		{"served", func(*http.Request) {}, 200, ""},
		{"HTTP/1.0", func(r *http.Request) { r.ProtoMinor = 0 }, 200, ""},
		{"HTTP/1.5", func(r *http.Request) { r.ProtoMinor = 5 }, 505, "http_version_not_supported"},
		{"HTTP/2.0", func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 2, 0 }, 505, "http_version_not_supported"},
		{"FOO", func(r *http.Request) { r.Method = "FOO" }, 501, "not_implemented"},
		{"lower-case get", func(r *http.Request) { r.Method = "get" }, 501, "not_implemented"},
		{"PROPFIND", func(r *http.Request) { r.Method = "PROPFIND" }, 501, "not_implemented"},
		{"CONNECT", func(r *http.Request) { r.Method = "CONNECT" }, 400, "bad_request"},
		{"PATCH", func(r *http.Request) { r.Method = "PATCH" }, 200, ""},
		// Host counts as a field: 99 more make 100.
		{"100 fields", func(r *http.Request) { r.Header = fields(99, 1) }, 200, ""},
		{"101 fields", func(r *http.Request) { r.Header = fields(100, 1) }, 431, "header_fields_too_large"},
		{"16384 bytes of fields", func(r *http.Request) {
			// "Host"+"x" = 5 bytes; "X-F0" = 4 bytes: the value fills the rest.
			r.Header = http.Header{"X-F0": {strings.Repeat("v", MaxHeaderBytes-5-4)}}
		}, 200, ""},
		{"16385 bytes of fields", func(r *http.Request) {
			r.Header = http.Header{"X-F0": {strings.Repeat("v", MaxHeaderBytes-5-4+1)}}
		}, 431, "header_fields_too_large"},
		{"8192-byte target", func(r *http.Request) { r.RequestURI = "/" + strings.Repeat("a", MaxTargetBytes-1) }, 200, ""},
		{"8193-byte target", func(r *http.Request) { r.RequestURI = "/" + strings.Repeat("a", MaxTargetBytes) }, 414, "uri_too_long"},
		{"target over 1 MiB", func(r *http.Request) { r.RequestURI = "/" + strings.Repeat("a", MaxTargetReadBytes) }, 431, "header_fields_too_large"},
		{"asterisk", func(r *http.Request) { r.Method, r.RequestURI = "OPTIONS", "*" }, 400, "bad_request"},
		{"absolute-form", func(r *http.Request) { r.RequestURI = "http://x/healthz" }, 200, ""},
		{"not ASCII", func(r *http.Request) { r.RequestURI = "/caf\xc3\xa9" }, 400, "bad_request"},
		{"chunked", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }, 400, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/healthz", nil)
			r.Host = "x"
			tc.mutate(r)
			rec := httptest.NewRecorder()
			Guard(ok).ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.code == "" {
				return
			}
			var e envelope
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("body %q, want the envelope with code %s", rec.Body, tc.code)
			}
			if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Connection") != "close" {
				t.Fatalf("headers %v", rec.Header())
			}
		})
	}
}

// startServer runs Run on a free address until the test ends.
func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []Endpoint{{Addr: addr, Handler: h}}, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exchange sends raw on a fresh connection and reads one answer.
func exchange(t *testing.T, addr string, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, raw) }() // the server may answer before it has read it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("body: %v", err)
	}
	return resp, body
}

func TestNetHTTPsOwnRefusalsCarryTheEnvelope(t *testing.T) {
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	head := "GET /healthz HTTP/1.1\r\nHost: x\r\n"
	cases := []struct {
		name, raw string
		status    int
		code      string
	}{
		{"garbage", "\x00\x01garbage\r\n\r\n", 400, "bad_request"},
		{"bad Content-Length", head + "Content-Length: abc\r\n\r\n", 400, "bad_request"},
		{"negative Content-Length", head + "Content-Length: -1\r\n\r\n", 400, "bad_request"},
		{"missing Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"two Hosts", head + "Host: y\r\n\r\n", 400, "bad_request"},
		{"bad Host", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_request"},
		{"bad field name", head + "Bad Name: v\r\n\r\n", 400, "bad_request"},
		{"control byte in a value", head + "X: a\x01b\r\n\r\n", 400, "bad_request"},
		{"bad escape in the path", "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
		{"no version", "GET /healthz\r\n\r\n", 400, "bad_request"},
		{"HTTP/9.9", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
		{"HTTP/0.9", "GET /healthz HTTP/0.9\r\n\r\n", 505, "http_version_not_supported"},
		{"gzip transfer coding", head + "Transfer-Encoding: gzip\r\n\r\n", 400, "bad_request"},
		{"Content-Length and chunked", head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request"},
		{"Expect", head + "Expect: something\r\n\r\n", 417, "expectation_failed"},
		// Found by the soak profile of the fuzz tests: net/http's 417 to an HTTP/1.0 request.
		{"Expect in HTTP/1.0", "GET /healthz HTTP/1.0\r\nHost: x\r\nExpect: !\r\n\r\n", 417, "expectation_failed"},
		{"head over the read limit", "GET /?q=" + strings.Repeat("x", MaxHeadReadBytes) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, "header_fields_too_large"},
		{"1000 fields", head + strings.Repeat("X-A: b\r\n", 1000) + "\r\n", 431, "header_fields_too_large"},
		{"FOO", "FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
		{"PRI", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http_version_not_supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := exchange(t, addr, tc.raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			var e envelope
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("body %q, want the envelope with code %s", body, tc.code)
			}
			if resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
				t.Fatalf("headers %v (close %v)", resp.Header, resp.Close)
			}
			if bytes.Contains(body, []byte("garbage")) || bytes.Contains(body, []byte("abc")) {
				t.Fatalf("the answer echoes the request: %q", body)
			}
		})
	}
}

func TestHandlerAnswersPassThroughUnchanged(t *testing.T) {
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain" { // a handler's own plain-text 400 is not rewritten
			http.Error(w, "plain", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("z", 10000))
	}))
	resp, body := exchange(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 400 || string(body) != "plain\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	resp, body = exchange(t, addr, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || len(body) != 10000 {
		t.Fatalf("got %d, %d bytes", resp.StatusCode, len(body))
	}
}

// closedWithin reads from c until the server closes it, failing the test if
// that takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("not closed within %v: %v", limit, err)
	}
	if len(b) != 0 {
		t.Fatalf("answered %q, want a silent close", b)
	}
	return time.Since(start)
}

func TestASlowHeadIsClosedUnansweredAfterTheHeaderTimeout(t *testing.T) {
	t.Setenv(HeaderTimeoutEnv, "0.4")
	addr := startServer(t, http.NotFoundHandler())
	// net/http itself is silent when the time-out falls between two lines of
	// the head, and answers 400 when it falls inside one: both are silent here.
	for _, partial := range []string{"", "GET /healthz HTTP/1.1\r\nHost: x\r\n", "GET /healthz HTTP/1.1\r\nX-Slow: zz"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, partial)
		if took := closedWithin(t, c, 5*time.Second); took < 200*time.Millisecond {
			t.Fatalf("%q: closed after %v, before the time-out", partial, took)
		}
		c.Close()
	}
	// net/http ends its background read of a kept connection with a time-out
	// when a handler returns: a garbled head after that is still answered.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("first answer: %v %v", resp, err)
	}
	_, _ = io.ReadAll(resp.Body)
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(c, "GARBAGE\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("second answer: %v %v", resp, err)
	}
}

func TestAnIdleConnectionIsClosedAfterTheIdleTimeout(t *testing.T) {
	t.Setenv(IdleTimeoutEnv, "0.5")
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want the server to close the idle connection, got %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("closed after %v, before the idle time-out", took)
	}
}

func TestTimeoutsFromTheEnvironment(t *testing.T) {
	header, idle, err := timeouts()
	if err != nil || header != HeaderTimeout || idle != IdleTimeout {
		t.Fatalf("defaults: %v %v %v", header, idle, err)
	}
	t.Setenv(HeaderTimeoutEnv, "1.5")
	if header, _, _ = timeouts(); header != 1500*time.Millisecond {
		t.Fatalf("header = %v", header)
	}
	for _, bad := range []string{"0", "-1", "x", "NaN"} {
		t.Setenv(IdleTimeoutEnv, bad)
		if _, _, err := timeouts(); err == nil || !strings.HasPrefix(err.Error(), IdleTimeoutEnv) {
			t.Fatalf("%q: err = %v", bad, err)
		}
		if err := Run(context.Background(), []Endpoint{{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()}}, time.Second); err == nil {
			t.Fatalf("%q: Run started", bad)
		}
	}
}
