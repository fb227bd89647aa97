package loadgen

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Arrival processes: when the requests of the schedule are meant to leave.
const (
	ArrivalConstant = "constant" // start + i/rate
	ArrivalPoisson  = "poisson"  // exponential inter-arrival times, mean 1/rate
)

// HTTP clients: loadgen's own (see rawHTTPTarget) or Go's net/http.
const (
	HTTPClientRaw = "raw"
	HTTPClientNet = "net/http"
)

// Config is loadgen's command line, validated.
type Config struct {
	URL         string // as given, {rand:N} placeholders included
	Rate        float64
	Duration    time.Duration // the measured window
	Warmup      time.Duration // sent but not recorded, before the window
	Arrival     string
	Seed        uint64
	MaxInFlight int
	Timeout     time.Duration // per request
	Method      string
	Body        string
	Headers     []Header
	JSONPath    string
	Quiet       bool
	CPUProfile  string // write a Go CPU profile of the run here

	HTTPClient string // HTTPClientRaw or HTTPClientNet

	GRPCMethod  string // /package.Service/Method
	GRPCRequest []byte // the encoded request message, sent as is
	GRPCConns   int

	target *urlTemplate // parsed URL, set by Validate
}

// Header is one --header, split at its first colon.
type Header struct{ Key, Value string }

// headerList is the repeatable --header flag.
type headerList []Header

func (h *headerList) String() string { return fmt.Sprint(*h) }

func (h *headerList) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("want 'Key: Value', got %q", s)
	}
	*h = append(*h, Header{Key: k, Value: strings.TrimSpace(v)})
	return nil
}

// ParseFlags reads the command line. The error, if any, is one line naming the
// offending flag, for the caller to print before exiting with status 2.
func ParseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		cfg     Config
		headers headerList
		grpcReq string
	)
	fs.StringVar(&cfg.URL, "url", "", "http://host:port/path (HTTP/1.1) or grpc://host:port; {rand:N} is replaced per request by a random integer in [0, N)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target arrival rate in requests/s (required)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of the measured window, e.g. 30s (required)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "send at the target rate for this long before the window, without recording")
	fs.StringVar(&cfg.Arrival, "arrival", ArrivalConstant, "arrival process: constant or poisson")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the Poisson arrivals and of {rand:N}")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 4096, "requests (and connections) in flight at most; further requests wait and their slip grows")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&cfg.Method, "method", "GET", "HTTP method")
	fs.StringVar(&cfg.Body, "body", "", "HTTP request body")
	fs.Var(&headers, "header", "extra HTTP request header 'Key: Value' (repeatable)")
	fs.StringVar(&cfg.HTTPClient, "http-client", HTTPClientRaw, "HTTP client: raw (loadgen's own, one connection per worker) or net/http (Go's, slower; a cross-check)")
	fs.StringVar(&cfg.JSONPath, "json", "", "write the result JSON to this file")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "print no summary")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (for go tool pprof)")
	fs.StringVar(&cfg.GRPCMethod, "grpc-method", "", "gRPC method to call, /package.Service/Method (grpc:// URLs)")
	fs.StringVar(&grpcReq, "grpc-request-base64", "", "the encoded protobuf request message, base64 (default: empty message)")
	fs.IntVar(&cfg.GRPCConns, "grpc-conns", 1, "gRPC connections, calls spread round-robin over them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b bytes.Buffer
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return Config{}, fmt.Errorf("usage: loadgen --url URL --rate R --duration D [flags]\n%s", b.String())
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Headers = headers
	if grpcReq != "" {
		b, err := base64.StdEncoding.DecodeString(grpcReq)
		if err != nil {
			return Config{}, fmt.Errorf("--grpc-request-base64: %v", err)
		}
		cfg.GRPCRequest = b
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"url", "rate", "duration"} {
		if !set[name] {
			return Config{}, fmt.Errorf("--%s: required", name)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	if cfg.target.scheme == schemeGRPC {
		for _, name := range []string{"method", "body", "header", "http-client"} {
			if set[name] {
				return Config{}, fmt.Errorf("--%s: only for http:// URLs", name)
			}
		}
	} else {
		for _, name := range []string{"grpc-method", "grpc-request-base64", "grpc-conns"} {
			if set[name] {
				return Config{}, fmt.Errorf("--%s: only for grpc:// URLs", name)
			}
		}
	}
	return cfg, nil
}

// Validate checks the fields and parses the URL; Run calls it too, so that a
// Config built by hand gets the same guarantees as the command line.
func (c *Config) Validate() error {
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate <= 0:
		return fmt.Errorf("--rate: must be a positive number of requests/s, got %v", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("--duration: must be positive, got %v", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup: must be non-negative, got %v", c.Warmup)
	case c.Arrival != ArrivalConstant && c.Arrival != ArrivalPoisson:
		return fmt.Errorf("--arrival: want constant or poisson, got %q", c.Arrival)
	case c.MaxInFlight < 1:
		return fmt.Errorf("--max-in-flight: must be at least 1, got %d", c.MaxInFlight)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout: must be positive, got %v", c.Timeout)
	case c.GRPCConns < 1 || c.GRPCConns > 64:
		return fmt.Errorf("--grpc-conns: must be between 1 and 64, got %d", c.GRPCConns)
	case !validToken(c.Method):
		return fmt.Errorf("--method: %q is not an HTTP method", c.Method)
	case c.HTTPClient != HTTPClientRaw && c.HTTPClient != HTTPClientNet:
		return fmt.Errorf("--http-client: want raw or net/http, got %q", c.HTTPClient)
	}
	for _, h := range c.Headers {
		switch {
		case strings.EqualFold(h.Key, "Content-Length"), strings.EqualFold(h.Key, "Transfer-Encoding"):
			return fmt.Errorf("--header: %s is set by loadgen from --body", h.Key)
		case !validToken(h.Key):
			return fmt.Errorf("--header: %q is not a header name", h.Key)
		}
	}
	// The schedule holds int64 nanoseconds: a rate so high that 1/rate rounds
	// to nothing, or a window so long that rate×duration overflows, is a typo.
	if n := c.Rate * (c.Warmup + c.Duration).Seconds(); n > 1<<40 {
		return fmt.Errorf("--rate: %v requests/s over %v is %.3g requests, too many", c.Rate, c.Warmup+c.Duration, n)
	}
	t, err := parseTemplate(c.URL)
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	c.target = t
	if t.scheme == schemeGRPC {
		if !strings.HasPrefix(c.GRPCMethod, "/") || strings.Count(c.GRPCMethod, "/") != 2 || strings.HasSuffix(c.GRPCMethod, "/") {
			return fmt.Errorf("--grpc-method: want /package.Service/Method, got %q", c.GRPCMethod)
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token, as a method must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

const (
	schemeHTTP = "http"
	schemeGRPC = "grpc"
)

// urlTemplate is a parsed --url: the address to connect to and the request
// target (path and query) split around its {rand:N} placeholders.
type urlTemplate struct {
	scheme string
	host   string   // host:port, as written in the Host header
	parts  []string // len(ranges)+1 literal pieces of the request target
	ranges []uint64 // N of each placeholder
	space  uint64   // product of ranges: the number of distinct targets
}

// parseTemplate parses an http:// or grpc:// URL whose path and query may
// contain {rand:N} placeholders, N ≥ 1. The product of all N must fit in 63
// bits, because one uniform draw in [0, product) picks all of them at once.
func parseTemplate(raw string) (*urlTemplate, error) {
	if raw == "" {
		return nil, errors.New("required")
	}
	t := &urlTemplate{space: 1}
	rest := raw
	var lit strings.Builder
	for {
		i := strings.Index(rest, "{rand:")
		if i < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:i])
		rest = rest[i+len("{rand:"):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated {rand:N} in %q", raw)
		}
		n, err := strconv.ParseUint(rest[:j], 10, 63)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("{rand:%s}: N must be a positive integer", rest[:j])
		}
		if t.space > math.MaxInt64/n {
			return nil, fmt.Errorf("the {rand:N} ranges multiply to more than 2^63")
		}
		t.space *= n
		t.ranges = append(t.ranges, n)
		t.parts = append(t.parts, lit.String())
		lit.Reset()
		rest = rest[j+1:]
	}
	t.parts = append(t.parts, lit.String())

	// Check the URL with every placeholder rendered as 0; the placeholders
	// must lie in the request target, after the authority.
	u, err := url.Parse(t.render(nil, 0))
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case schemeHTTP, schemeGRPC:
	default:
		return nil, fmt.Errorf("scheme must be http or grpc, got %q", raw)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want scheme://host:port/path, without user or fragment", raw)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return nil, fmt.Errorf("%q: the port is required", raw)
	}
	t.scheme, t.host = u.Scheme, u.Host
	prefix := u.Scheme + "://" + u.Host
	if !strings.HasPrefix(t.parts[0], prefix) {
		return nil, fmt.Errorf("%q: {rand:N} may appear only in the path and query", raw)
	}
	t.parts[0] = t.parts[0][len(prefix):]
	if t.scheme == schemeGRPC {
		if len(t.ranges) > 0 || (t.parts[0] != "" && t.parts[0] != "/") {
			return nil, fmt.Errorf("%q: a grpc:// URL is only scheme://host:port; the method is --grpc-method", raw)
		}
		return t, nil
	}
	if t.parts[0] == "" || t.parts[0][0] != '/' {
		t.parts[0] = "/" + t.parts[0]
	}
	// Only characters valid in a request target, so that what is sent is
	// exactly what was written, without escaping.
	for _, p := range t.parts {
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
				return nil, fmt.Errorf("%q: the path must be percent-encoded already (byte %q)", raw, c)
			}
		}
	}
	return t, nil
}

// render returns the request target (or, before parseTemplate has split off
// the authority, the whole URL) for draw, a uniform integer in [0, space):
// each placeholder takes one mixed-radix digit of it, so that the digits are
// independent and uniform in their own ranges. buf is reused if large enough.
func (t *urlTemplate) render(buf []byte, draw uint64) string {
	return string(t.appendTarget(buf[:0], draw))
}

func (t *urlTemplate) appendTarget(b []byte, draw uint64) []byte {
	b = append(b, t.parts[0]...)
	for i, n := range t.ranges {
		b = strconv.AppendUint(b, draw%n, 10)
		draw /= n
		b = append(b, t.parts[i+1]...)
	}
	return b
}

// requestTarget is the target with every placeholder at 0, for display.
func (t *urlTemplate) String() string { return t.scheme + "://" + t.host + t.render(nil, 0) }
