// Package fanout is the Go implementation of the fan-out benchmark service: a
// catalog request scatters to K backends in parallel, each call under its own
// timeout and optionally hedged to a second replica, and gathers whatever came
// back before the request deadline into one answer (see
// systems/fanout/README.md for the contract it follows).
package fanout

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Backends is the contract's backend list; --fanout K uses the first K.
var Backends = []string{
	"pricing", "inventory", "reviews", "shipping",
	"recommendations", "promotions", "ratings", "availability",
}

// Config is the service's command line, validated.
type Config struct {
	Listen      string
	Replicas    []string // base URLs without a trailing slash
	Fanout      int
	CallTimeout time.Duration // per attempt
	Deadline    time.Duration // whole catalog request
	HedgeDelay  time.Duration // 0: no hedging
	MaxInFlight int           // catalog requests in progress at most
	MaxLag      time.Duration // shrink the in-flight limit while goroutines wait this long to run; 0: never
}

// The defaults of --max-in-flight and --max-lag-ms (systems/fanout/README.md,
// "Overload", derives them).
const (
	DefaultMaxInFlight = 128
	DefaultMaxLagMs    = 10
)

// ParseFlags reads the command line. The error, if any, is one line naming the
// offending flag, for the caller to print before exiting with status 2.
func ParseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		listen   = fs.String("listen", "127.0.0.1:8080", "address to serve on")
		replicas = fs.String("replicas", "", "comma-separated base URLs of the backend replicas (required)")
		k        = fs.Int("fanout", 4, "number of backends, 1-8")
		callMs   = fs.Int("call-timeout-ms", 100, "timeout of one backend call attempt in ms")
		deadMs   = fs.Int("deadline-ms", 250, "deadline of the whole catalog request in ms")
		hedgeMs  = fs.Int("hedge-delay-ms", 0, "hedge a call to the next replica after this many ms; 0 disables")
		maxIn    = fs.Int("max-in-flight", DefaultMaxInFlight, "catalog requests served at once at most; beyond the limit 503")
		maxLagMs = fs.Int("max-lag-ms", DefaultMaxLagMs, "lower the in-flight limit while goroutines wait this many ms to run; 0 disables")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b bytes.Buffer
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return Config{}, fmt.Errorf("usage of fanout:\n%s", b.String())
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := Config{
		Listen:      *listen,
		Fanout:      *k,
		CallTimeout: time.Duration(*callMs) * time.Millisecond,
		Deadline:    time.Duration(*deadMs) * time.Millisecond,
		HedgeDelay:  time.Duration(*hedgeMs) * time.Millisecond,
		MaxInFlight: *maxIn,
		MaxLag:      time.Duration(*maxLagMs) * time.Millisecond,
	}
	if *replicas == "" {
		return Config{}, errors.New("--replicas: required")
	}
	for _, raw := range strings.Split(*replicas, ",") {
		base, err := parseReplica(strings.TrimSpace(raw))
		if err != nil {
			return Config{}, fmt.Errorf("--replicas: %v", err)
		}
		cfg.Replicas = append(cfg.Replicas, base)
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"--call-timeout-ms", *callMs}, {"--deadline-ms", *deadMs}, {"--hedge-delay-ms", *hedgeMs}, {"--max-lag-ms", *maxLagMs}} {
		if c.v < 0 {
			return Config{}, fmt.Errorf("%s: must be non-negative, got %d", c.flag, c.v)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the relations between fields that ParseFlags cannot check
// one flag at a time; New calls it too, so tests get the same guarantees.
func (c Config) Validate() error {
	switch {
	case c.Fanout < 1 || c.Fanout > len(Backends):
		return fmt.Errorf("--fanout: must be between 1 and %d, got %d", len(Backends), c.Fanout)
	case len(c.Replicas) == 0:
		return errors.New("--replicas: required")
	case c.CallTimeout < 0:
		return fmt.Errorf("--call-timeout-ms: must be non-negative, got %v", c.CallTimeout)
	case c.Deadline < 0:
		return fmt.Errorf("--deadline-ms: must be non-negative, got %v", c.Deadline)
	case c.HedgeDelay < 0:
		return fmt.Errorf("--hedge-delay-ms: must be non-negative, got %v", c.HedgeDelay)
	case c.HedgeDelay > 0 && len(c.Replicas) < 2:
		return fmt.Errorf("--hedge-delay-ms: hedging needs at least two --replicas, got %d", len(c.Replicas))
	case c.MaxInFlight < 1:
		return fmt.Errorf("--max-in-flight: must be at least 1, got %d", c.MaxInFlight)
	case c.MaxLag < 0:
		return fmt.Errorf("--max-lag-ms: must be non-negative, got %v", c.MaxLag)
	}
	return nil
}

// parseReplica checks that s is an http(s) base URL with a host and nothing
// after the path, and returns it without a trailing slash so that
// base + "/backend/..." is the call URL.
func parseReplica(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty replica URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) base URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: a base URL has no user, query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}
