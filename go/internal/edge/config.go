package edge

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/patternbench/patternbench/go/internal/edge/auth"
	"github.com/patternbench/patternbench/go/internal/edge/ratelimit"
	"github.com/patternbench/patternbench/go/internal/flagargs"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
)

// Config is the edge's command line, validated.
type Config struct {
	Listen      string
	Core        string // the core's gRPC address, host:port
	MaxInFlight int
	// Budget is a call's deadline, from its arrival, when it sends no Request-Timeout-Ms.
	Budget time.Duration
	// Retries is how many more attempts an idempotent call may make; RetryBackoff and
	// RetryBackoffMax are the base and the cap of the full-jitter wait before each.
	Retries         int
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// BreakerFailures consecutive failures open the core's circuit for BreakerOpen.
	BreakerFailures int
	BreakerOpen     time.Duration
	LogRequests     bool
	Trace           string // "none" or "otlp"
	OTLPEndpoint    string // the OTLP/HTTP traces URL
	TraceSample     float64
	Auth            auth.Config
	RateLimit       ratelimit.Config
}

// Defaults of the flags.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultMaxInFlight     = 1024
	DefaultBudget          = time.Second
	DefaultRetries         = 2
	DefaultRetryBackoff    = 5 * time.Millisecond
	DefaultRetryBackoffMax = 50 * time.Millisecond
	DefaultBreakerFailures = 20
	DefaultBreakerOpen     = time.Second
	DefaultOTLPEndpoint    = "http://127.0.0.1:4318/v1/traces"
)

// Bounds of the flags.
const (
	maxBudgetMs = 99_999_999 // as Request-Timeout-Ms
	maxRetries  = 10
)

// ParseFlags reads the command line of the binary called name. The error, if any, is one line
// naming the offending flag, for the caller to print before exiting with status 2.
func ParseFlags(name string, args []string) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	var budgetMs, backoffMs, backoffMaxMs, openMs int
	fs.StringVar(&cfg.Listen, "listen", DefaultListen, "address to serve REST/JSON on (host:port)")
	fs.StringVar(&cfg.Core, "core", "", "the core's gRPC address (host:port), required")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", DefaultMaxInFlight,
		"calls served at once at most; beyond it a call is refused at once (503 overloaded)")
	fs.IntVar(&budgetMs, "budget-ms", int(DefaultBudget/time.Millisecond),
		"a call's deadline in ms when it sends no Request-Timeout-Ms")
	fs.IntVar(&cfg.Retries, "retries", DefaultRetries,
		fmt.Sprintf("extra attempts of an idempotent call on UNAVAILABLE, 0-%d", maxRetries))
	fs.IntVar(&backoffMs, "retry-backoff-ms", int(DefaultRetryBackoff/time.Millisecond),
		"base of the full-jitter backoff before a retry (ms)")
	fs.IntVar(&backoffMaxMs, "retry-backoff-max-ms", int(DefaultRetryBackoffMax/time.Millisecond),
		"cap of the full-jitter backoff before a retry (ms)")
	fs.IntVar(&cfg.BreakerFailures, "breaker-failures", DefaultBreakerFailures,
		"consecutive failures that open the core's circuit")
	fs.IntVar(&openMs, "breaker-open-ms", int(DefaultBreakerOpen/time.Millisecond),
		"how long an open circuit refuses calls before letting a few through (ms)")
	fs.BoolVar(&cfg.LogRequests, "log-requests", false, "log one JSON line per call on stderr")
	fs.StringVar(&cfg.Trace, "trace", "none", "tracing: none or otlp")
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", DefaultOTLPEndpoint, "OTLP/HTTP traces URL (--trace otlp)")
	fs.Float64Var(&cfg.TraceSample, "trace-sample", 1.0, "share of new traces sampled, 0-1 (--trace otlp)")
	auth.RegisterFlags(fs, &cfg.Auth)
	ratelimit.RegisterFlags(fs, &cfg.RateLimit)
	if err := flagargs.Parse(fs, args, "usage of "+name+":"); err != nil {
		return Config{}, err
	}
	if budgetMs < 1 || budgetMs > maxBudgetMs {
		return Config{}, fmt.Errorf("--budget-ms: must be 1 to %d, got %d", maxBudgetMs, budgetMs)
	}
	cfg.Budget = time.Duration(budgetMs) * time.Millisecond
	cfg.RetryBackoff = time.Duration(backoffMs) * time.Millisecond
	cfg.RetryBackoffMax = time.Duration(backoffMaxMs) * time.Millisecond
	cfg.BreakerOpen = time.Duration(openMs) * time.Millisecond
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks what the flags cannot; New calls it too.
func (c Config) Validate() error {
	if err := recsvc.CheckAddr("--listen", c.Listen); err != nil {
		return err
	}
	if c.Core == "" {
		return errors.New("--core: required (the core's gRPC address, host:port)")
	}
	if err := recsvc.CheckAddr("--core", c.Core); err != nil {
		return err
	}
	switch {
	case c.MaxInFlight < 1:
		return fmt.Errorf("--max-in-flight: must be at least 1, got %d", c.MaxInFlight)
	case c.Budget < time.Millisecond:
		return fmt.Errorf("--budget-ms: must be at least 1, got %v", c.Budget)
	case c.Retries < 0 || c.Retries > maxRetries:
		return fmt.Errorf("--retries: must be 0 to %d, got %d", maxRetries, c.Retries)
	case c.RetryBackoff < time.Millisecond:
		return fmt.Errorf("--retry-backoff-ms: must be at least 1, got %v", c.RetryBackoff)
	case c.RetryBackoffMax < c.RetryBackoff:
		return fmt.Errorf("--retry-backoff-max-ms: must be at least --retry-backoff-ms, got %v", c.RetryBackoffMax)
	case c.BreakerFailures < 1:
		return fmt.Errorf("--breaker-failures: must be at least 1, got %d", c.BreakerFailures)
	case c.BreakerOpen < time.Millisecond:
		return fmt.Errorf("--breaker-open-ms: must be at least 1, got %v", c.BreakerOpen)
	case c.Trace != "none" && c.Trace != "otlp":
		return fmt.Errorf("--trace: must be none or otlp, got %q", c.Trace)
	case !(c.TraceSample >= 0 && c.TraceSample <= 1):
		return fmt.Errorf("--trace-sample: must be 0 to 1, got %v", c.TraceSample)
	}
	// The other packages' flags are checked by their New; the choices here, so that a typo is a
	// bad flag (status 2) rather than a failure to start.
	switch c.Auth.Mode {
	case "", auth.ModeNone, auth.ModeHS256, auth.ModeRS256:
	default:
		return fmt.Errorf("--auth: must be %s, %s or %s, got %q", auth.ModeNone, auth.ModeHS256, auth.ModeRS256, c.Auth.Mode)
	}
	if c.RateLimit.RPS != 0 && c.RateLimit.Store != ratelimit.StoreMemory && c.RateLimit.Store != ratelimit.StoreRedis {
		return fmt.Errorf("--rate-limit-store: must be %s or %s, got %q", ratelimit.StoreMemory, ratelimit.StoreRedis, c.RateLimit.Store)
	}
	if c.Trace == "otlp" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--otlp-endpoint: %q is not an http(s) URL", c.OTLPEndpoint)
		}
	}
	return nil
}
