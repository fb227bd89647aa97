package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Error kinds other than an HTTP status or a gRPC code.
const (
	KindTimeout    = "timeout"    // no complete answer within --timeout
	KindConnection = "connection" // dial refused or failed, reset, EOF, malformed answer
	KindUnsent     = "unsent"     // never sent: the generator gave up on its backlog
)

// preRendered bounds the number of distinct request targets built at start:
// up to this many, every request reuses a prepared *http.Request.
const preRendered = 1 << 16

// httpTarget sends HTTP/1.1 requests through Go's net/http: one shared
// keep-alive transport allowing as many connections as requests in flight,
// so that a request never waits for a connection that another one holds. It
// is --http-client net/http, the reference the raw client is tested against;
// it costs more CPU per request and opens a connection whenever no idle one
// is at hand at that instant (see rawHTTPTarget).
type httpTarget struct {
	client  *http.Client
	timeout time.Duration
	tmpl    *urlTemplate
	proto   *http.Request   // method, headers, host: copied for every request
	reqs    []*http.Request // one per distinct target, when they are few
	body    []byte          // the body, when it has no placeholder
	bodyT   *textTemplate   // the body, when it has placeholders
}

func newHTTPTarget(cfg *Config, wire *wireCounter) *httpTarget {
	tr := &http.Transport{
		Proxy:               nil, // the target is addressed directly, never via $HTTP_PROXY
		DialContext:         wire.dialContext(&net.Dialer{KeepAlive: 30 * time.Second}),
		MaxConnsPerHost:     cfg.MaxInFlight,
		MaxIdleConnsPerHost: cfg.MaxInFlight,
		MaxIdleConns:        cfg.MaxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	t := &httpTarget{
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer (3xx, an error), not a second request.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: cfg.Timeout,
		tmpl:    cfg.target,
	}
	if len(cfg.body.ranges) > 0 {
		t.bodyT = cfg.body
	} else {
		t.body = []byte(cfg.Body)
	}
	base := "http://" + cfg.target.host
	proto, err := http.NewRequest(cfg.Method, base+cfg.target.render(nil, 0), nil)
	if err != nil {
		panic(err) // parseTemplate accepted it
	}
	for _, h := range cfg.Headers {
		if http.CanonicalHeaderKey(h.Key) == "Host" {
			proto.Host = h.Value
			continue
		}
		proto.Header.Add(h.Key, h.Value)
	}
	t.proto = proto
	if cfg.target.space <= preRendered {
		t.reqs = make([]*http.Request, cfg.target.space)
		var buf []byte
		for i := range t.reqs {
			t.reqs[i] = t.build(buf, uint64(i))
		}
	}
	return t
}

// build makes the request for draw from the prototype. The URL is parsed
// from the rendered text, so that its path is sent exactly as written.
func (t *httpTarget) build(buf []byte, draw uint64) *http.Request {
	u, err := url.Parse("http://" + t.tmpl.host + t.tmpl.render(buf, draw))
	if err != nil {
		panic(err) // parseTemplate checked the characters of every part
	}
	r := *t.proto
	r.URL = u
	return &r
}

func (t *httpTarget) session(int) session { return &httpSession{t: t} }

func (t *httpTarget) close() { t.client.CloseIdleConnections() }

// httpSession is one worker's view of the shared transport.
type httpSession struct {
	t   *httpTarget
	buf []byte
}

func (s *httpSession) do(ctx context.Context, draw uint64, _ *msgLog) string {
	t := s.t
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	// The URL's placeholders take the low digits of draw, the body's the
	// rest (see textTemplate.appendTo).
	var req *http.Request
	if t.reqs != nil {
		req = t.reqs[draw%t.tmpl.space].WithContext(ctx)
	} else {
		req = t.build(s.buf, draw).WithContext(ctx)
	}
	body := t.body
	if t.bodyT != nil {
		// A new slice per request: the transport may still read the body
		// after Do returns (see http.RoundTripper), so it is never reused.
		body, _ = t.bodyT.appendTo(make([]byte, 0, t.bodyT.size(draw/t.tmpl.space)), draw/t.tmpl.space)
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return errorKind(ctx, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return errorKind(ctx, err)
	}
	return statusKind(resp.StatusCode)
}

// errorKind classifies a failed exchange: past the deadline it is a
// timeout, whatever the transport made of it; anything else is the
// connection's fault.
func errorKind(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return KindTimeout
	}
	return KindConnection
}

// statusKinds holds the error kind of every status code, "" for 2xx, built
// once so that a burst of 503s allocates nothing.
var statusKinds = func() []string {
	k := make([]string, 600)
	for i := range k {
		if i < 200 || i > 299 {
			k[i] = "HTTP " + strconv.Itoa(i)
		}
	}
	return k
}()

// statusKind is "" for a 2xx status, else the error kind "HTTP <code>".
func statusKind(code int) string {
	if code >= 0 && code < len(statusKinds) {
		return statusKinds[code]
	}
	return "HTTP " + strconv.Itoa(code)
}
