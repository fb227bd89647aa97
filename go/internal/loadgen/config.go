package loadgen

import (
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

	"github.com/patternbench/patternbench/go/internal/flagargs"
	"google.golang.org/protobuf/encoding/protowire"
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

	GRPCMethod  string     // /package.Service/Method
	GRPCRequest []byte     // the encoded request message, sent as is
	GRPCVary    []GRPCVary // fields appended to GRPCRequest per call
	GRPCStream  bool       // GRPCMethod is server-streaming
	GRPCConns   int

	// Set by Validate.
	target *urlTemplate  // parsed URL
	body   *textTemplate // parsed Body (HTTP)
	vary   []varyField   // parsed GRPCVary
	space  uint64        // distinct draws: the product of every {rand:N} of URL, Body and GRPCVary
}

// GRPCVary is one --grpc-vary: a top-level field of the request message,
// appended to the encoded request on every call with its own value.
type GRPCVary struct {
	Field    int    // field number, 1 to 536870911
	Kind     string // VaryString or VaryVarint
	Template string // text with {rand:N}; for VaryVarint one {rand:N} or a decimal number
}

// Kinds of --grpc-vary field.
const (
	VaryString = "string" // length-delimited: string or bytes
	VaryVarint = "varint" // int32, int64, uint32, uint64, bool, enum; non-negative
)

// Header is one --header, split at its first colon.
type Header struct{ Key, Value string }

// stringList is a repeatable flag whose values are checked after parsing.
type stringList []string

func (l *stringList) String() string { return fmt.Sprint(*l) }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

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
		vary    stringList
	)
	fs.StringVar(&cfg.URL, "url", "", "http://host:port/path (HTTP/1.1) or grpc://host:port; {rand:N} in the path and query is replaced per request by a random integer in [0, N), {rand:LO..HI} by one in [LO, HI]")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target arrival rate in requests/s (required)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of the measured window, e.g. 30s (required)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "send at the target rate for this long before the window, without recording")
	fs.StringVar(&cfg.Arrival, "arrival", ArrivalConstant, "arrival process: constant or poisson")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the Poisson arrivals and of {rand:N}")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 4096, "requests (and connections) in flight at most; further requests wait and their slip grows")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout (with --grpc-stream, for the whole stream)")
	fs.StringVar(&cfg.Method, "method", "GET", "HTTP method")
	fs.StringVar(&cfg.Body, "body", "", "HTTP request body; {rand:N} is replaced per request as in --url, by the same draw, and Content-Length follows")
	fs.Var(&headers, "header", "extra HTTP request header 'Key: Value' (repeatable)")
	fs.StringVar(&cfg.HTTPClient, "http-client", HTTPClientRaw, "HTTP client: raw (loadgen's own, one connection per worker) or net/http (Go's, slower; a cross-check)")
	fs.StringVar(&cfg.JSONPath, "json", "", "write the result JSON to this file")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "print no summary")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (for go tool pprof)")
	fs.StringVar(&cfg.GRPCMethod, "grpc-method", "", "gRPC method to call, /package.Service/Method (grpc:// URLs)")
	fs.StringVar(&grpcReq, "grpc-request-base64", "", "the encoded protobuf request message, base64 (default: empty message)")
	fs.Var(&vary, "grpc-vary", "FIELD:KIND:TEMPLATE: append top-level field number FIELD to the gRPC request on every call, "+
		"KIND string or varint (int32/int64/uint32/uint64/bool/enum, non-negative), its value TEMPLATE with {rand:N} drawn per call "+
		"(varint: exactly one {rand:N}, or a decimal number); the last occurrence of a field wins, so this overrides "+
		"the field in --grpc-request-base64 (repeatable)")
	fs.BoolVar(&cfg.GRPCStream, "grpc-stream", false, "--grpc-method is server-streaming: a call sends the request, receives every message "+
		"to the end of the stream and counts as one request, its latency to the end of the stream")
	fs.IntVar(&cfg.GRPCConns, "grpc-conns", 1, "gRPC connections, calls spread round-robin over them")
	if err := flagargs.Parse(fs, args, "usage: loadgen --url URL --rate R --duration D [flags]"); err != nil {
		return Config{}, err
	}
	cfg.Headers = headers
	if grpcReq != "" {
		b, err := base64.StdEncoding.DecodeString(grpcReq)
		if err != nil {
			return Config{}, fmt.Errorf("--grpc-request-base64: %v", err)
		}
		cfg.GRPCRequest = b
	}
	for _, v := range vary {
		f, err := parseVary(v)
		if err != nil {
			return Config{}, err
		}
		cfg.GRPCVary = append(cfg.GRPCVary, f)
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
		for _, name := range []string{"grpc-method", "grpc-request-base64", "grpc-vary", "grpc-stream", "grpc-conns"} {
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
	// One uniform draw in [0, space) renders every placeholder: the URL's
	// take its low mixed-radix digits, then the body's, then each
	// --grpc-vary's in order.
	space := t.space
	mul := func(flag string, n uint64) error {
		if space > math.MaxInt64/n {
			return fmt.Errorf("%s: the {rand:N} ranges of --url, --body and --grpc-vary multiply to more than 2^63", flag)
		}
		space *= n
		return nil
	}
	c.body, c.vary = nil, nil
	if t.scheme == schemeGRPC {
		if !strings.HasPrefix(c.GRPCMethod, "/") || strings.Count(c.GRPCMethod, "/") != 2 || strings.HasSuffix(c.GRPCMethod, "/") {
			return fmt.Errorf("--grpc-method: want /package.Service/Method, got %q", c.GRPCMethod)
		}
		seen := map[int]bool{}
		for _, v := range c.GRPCVary {
			f, err := compileVary(v)
			if err != nil {
				return err
			}
			if seen[v.Field] {
				return fmt.Errorf("--grpc-vary: field %d given twice", v.Field)
			}
			seen[v.Field] = true
			if err := mul("--grpc-vary", f.space()); err != nil {
				return err
			}
			c.vary = append(c.vary, f)
		}
	} else {
		switch {
		case len(c.GRPCVary) > 0:
			return errors.New("--grpc-vary: only for grpc:// URLs")
		case c.GRPCStream:
			return errors.New("--grpc-stream: only for grpc:// URLs")
		}
		b, err := parseText(c.Body)
		if err != nil {
			return fmt.Errorf("--body: %v", err)
		}
		if err := mul("--body", b.space); err != nil {
			return err
		}
		c.body = b
	}
	c.space = space
	return nil
}

// maxField is the largest protobuf field number.
const maxField = int(protowire.MaxValidNumber)

// parseVary splits one --grpc-vary FIELD:KIND:TEMPLATE; compileVary checks it.
func parseVary(s string) (GRPCVary, error) {
	field, rest, ok1 := strings.Cut(s, ":")
	kind, tmpl, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return GRPCVary{}, fmt.Errorf("--grpc-vary: want FIELD:KIND:TEMPLATE, got %q", s)
	}
	n, err := strconv.Atoi(field)
	if err != nil {
		return GRPCVary{}, fmt.Errorf("--grpc-vary: field number must be 1..%d, got %q", maxField, field)
	}
	return GRPCVary{Field: n, Kind: kind, Template: tmpl}, nil
}

// varyField is a compiled --grpc-vary.
type varyField struct {
	num   protowire.Number
	str   *textTemplate // VaryString: the value's template
	n     uint64        // VaryVarint {rand:N}: N; 0 for a constant
	value uint64        // VaryVarint constant
}

func compileVary(v GRPCVary) (varyField, error) {
	if v.Field < 1 || v.Field > maxField {
		return varyField{}, fmt.Errorf("--grpc-vary: field number must be 1..%d, got %d", maxField, v.Field)
	}
	f := varyField{num: protowire.Number(v.Field)}
	tmpl, err := parseText(v.Template)
	if err != nil {
		return varyField{}, fmt.Errorf("--grpc-vary: field %d: %v", v.Field, err)
	}
	switch v.Kind {
	case VaryString:
		f.str = tmpl
	case VaryVarint:
		switch {
		case len(tmpl.ranges) == 1 && tmpl.parts[0] == "" && tmpl.parts[1] == "" && tmpl.offsets[0] == 0:
			f.n = tmpl.ranges[0]
		case len(tmpl.ranges) == 0:
			n, err := strconv.ParseUint(v.Template, 10, 64)
			if err != nil {
				return varyField{}, fmt.Errorf("--grpc-vary: field %d: a varint is one {rand:N} or a non-negative decimal number, got %q", v.Field, v.Template)
			}
			f.value = n
		default:
			return varyField{}, fmt.Errorf("--grpc-vary: field %d: a varint is one {rand:N} or a non-negative decimal number, got %q", v.Field, v.Template)
		}
	default:
		return varyField{}, fmt.Errorf("--grpc-vary: field %d: KIND must be string or varint, got %q", v.Field, v.Kind)
	}
	return f, nil
}

// space is the number of distinct values of f.
func (f *varyField) space() uint64 {
	switch {
	case f.str != nil:
		return f.str.space
	case f.n > 0:
		return f.n
	}
	return 1
}

// appendTo appends the field, its value for draw, to the encoded message b,
// and returns what is left of draw.
func (f *varyField) appendTo(b []byte, draw uint64) ([]byte, uint64) {
	if f.str != nil {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(f.str.size(draw)))
		return f.str.appendTo(b, draw)
	}
	v := f.value
	if f.n > 0 {
		v, draw = draw%f.n, draw/f.n
	}
	b = protowire.AppendTag(b, f.num, protowire.VarintType)
	return protowire.AppendVarint(b, v), draw
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

// textTemplate is text split around its {rand:N} placeholders.
type textTemplate struct {
	parts   []string // len(ranges)+1 literal pieces
	ranges  []uint64 // N of each placeholder: how many values it takes
	offsets []uint64 // the least value of each: 0 for {rand:N}, LO for {rand:LO..HI}
	space   uint64   // product of ranges: the number of distinct renderings
	lits    int      // total length of parts
}

// parseText parses text whose {rand:N} placeholders, N ≥ 1, are replaced by
// integers in [0, N), and whose {rand:LO..HI} placeholders, LO ≤ HI, by
// integers in [LO, HI] (ids that start at 1). The product of all ranges must
// fit in 63 bits, because one uniform draw in [0, product) picks all of them
// at once.
func parseText(raw string) (*textTemplate, error) {
	t := &textTemplate{space: 1}
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
		n, offset, err := parseRange(rest[:j])
		if err != nil {
			return nil, err
		}
		if t.space > math.MaxInt64/n {
			return nil, fmt.Errorf("the {rand:N} ranges multiply to more than 2^63")
		}
		t.space *= n
		t.ranges = append(t.ranges, n)
		t.offsets = append(t.offsets, offset)
		t.parts = append(t.parts, lit.String())
		lit.Reset()
		rest = rest[j+1:]
	}
	t.parts = append(t.parts, lit.String())
	t.count()
	return t, nil
}

// parseRange reads a placeholder's N, or LO..HI: (values it takes, least value).
func parseRange(text string) (uint64, uint64, error) {
	if lo, hi, ok := strings.Cut(text, ".."); ok {
		low, err1 := strconv.ParseUint(lo, 10, 63)
		high, err2 := strconv.ParseUint(hi, 10, 63)
		if err1 != nil || err2 != nil || high < low || high-low == math.MaxInt64 {
			return 0, 0, fmt.Errorf("{rand:%s}: LO..HI must be integers with LO ≤ HI", text)
		}
		return high - low + 1, low, nil
	}
	n, err := strconv.ParseUint(text, 10, 63)
	if err != nil || n == 0 {
		return 0, 0, fmt.Errorf("{rand:%s}: N must be a positive integer", text)
	}
	return n, 0, nil
}

// count sets lits from parts.
func (t *textTemplate) count() {
	t.lits = 0
	for _, p := range t.parts {
		t.lits += len(p)
	}
}

// appendTo appends the rendering for draw, a uniform integer in [0, space)
// or more, to b: each placeholder takes one mixed-radix digit of draw, so
// that the digits are independent and uniform in their own ranges. It
// returns what is left of draw, draw/space, for the next template.
func (t *textTemplate) appendTo(b []byte, draw uint64) ([]byte, uint64) {
	b = append(b, t.parts[0]...)
	for i, n := range t.ranges {
		b = strconv.AppendUint(b, draw%n+t.offsets[i], 10)
		draw /= n
		b = append(b, t.parts[i+1]...)
	}
	return b, draw
}

// size is the length of the rendering for draw.
func (t *textTemplate) size(draw uint64) int {
	n := t.lits
	for i, r := range t.ranges {
		n += decimalDigits(draw%r + t.offsets[i])
		draw /= r
	}
	return n
}

func decimalDigits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// urlTemplate is a parsed --url: the address to connect to and the request
// target (path and query) split around its {rand:N} placeholders.
type urlTemplate struct {
	textTemplate
	scheme string
	host   string // host:port, as written in the Host header
}

// parseTemplate parses an http:// or grpc:// URL whose path and query may
// contain {rand:N} placeholders (see parseText).
func parseTemplate(raw string) (*urlTemplate, error) {
	if raw == "" {
		return nil, errors.New("required")
	}
	text, err := parseText(raw)
	if err != nil {
		return nil, err
	}
	t := &urlTemplate{textTemplate: *text}

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
	defer t.count() // parts change below
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
// the authority, the whole URL) for draw (see appendTo). buf is reused if
// large enough.
func (t *urlTemplate) render(buf []byte, draw uint64) string {
	b, _ := t.appendTo(buf[:0], draw)
	return string(b)
}

// requestTarget is the target with every placeholder at 0, for display.
func (t *urlTemplate) String() string { return t.scheme + "://" + t.host + t.render(nil, 0) }
