// Package ratelimit is the edge's per-client rate limit: a token bucket per key, RPS tokens a
// second up to Burst, starting full, kept in the edge's memory or in redis (shared by every
// edge that uses the same server). When redis fails the fail policy decides, and the limiter
// recovers by itself once redis answers again.
package ratelimit

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"
)

// Stores of --rate-limit-store.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Defaults of the flags.
const (
	DefaultRedisAddr    = "127.0.0.1:6379"
	DefaultRedisTimeout = 50 * time.Millisecond
)

// maxRefillSeconds bounds Burst/RPS, the time an empty bucket takes to fill (about 31 years),
// so that it fits the stores' integer nanoseconds and milliseconds with room to spare.
const maxRefillSeconds = 1e9

// Config is the rate limit, from the command line.
type Config struct {
	// RPS is the tokens added to a key's bucket per second; 0 turns the limit off.
	RPS float64
	// Burst is the bucket's capacity; 0 means max(1, ceil(RPS/10)), a tenth of a second's worth.
	Burst int
	// Store is memory (this edge's buckets) or redis (shared between edges).
	Store string
	// RedisAddr is the redis server's host:port.
	RedisAddr string
	// RedisTimeout bounds each call to redis, dial included.
	RedisTimeout time.Duration
	// FailOpen admits a request when the store fails; otherwise it is refused.
	FailOpen bool
}

// RegisterFlags declares the flags of c on fs, with their defaults: --rate-limit-rps 0 (off),
// --rate-limit-burst 0 (max(1, ceil(rps/10))), --rate-limit-store memory, --redis
// 127.0.0.1:6379, --redis-timeout-ms 50 and --rate-limit-fail open.
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.Float64Var(&c.RPS, "rate-limit-rps", 0, "requests a second per client (token refill rate); 0: no limit")
	fs.IntVar(&c.Burst, "rate-limit-burst", 0, "bucket capacity per client; 0: max(1, ceil(rps/10))")
	fs.StringVar(&c.Store, "rate-limit-store", StoreMemory, "where the buckets live: memory or redis")
	fs.StringVar(&c.RedisAddr, "redis", DefaultRedisAddr, "redis server (host:port) of --rate-limit-store redis")
	c.RedisTimeout = DefaultRedisTimeout
	fs.Var((*millis)(&c.RedisTimeout), "redis-timeout-ms", "bound of each redis call, dial included, in ms")
	c.FailOpen = true
	fs.Var((*failPolicy)(&c.FailOpen), "rate-limit-fail",
		"when the store fails: open (admit) or closed (refuse, Retry-After 1 s)")
}

// millis is a duration flag given in whole milliseconds.
type millis time.Duration

func (m *millis) String() string { return strconv.FormatInt(time.Duration(*m).Milliseconds(), 10) }

func (m *millis) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("must be a whole number of milliseconds")
	}
	*m = millis(time.Duration(n) * time.Millisecond)
	return nil
}

// failPolicy is --rate-limit-fail: true for open.
type failPolicy bool

func (p *failPolicy) String() string { return policyName(bool(*p)) }

func (p *failPolicy) Set(s string) error {
	switch s {
	case "open", "closed":
		*p = s == "open"
		return nil
	}
	return errors.New("must be open or closed")
}

func policyName(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

// burst is the bucket's capacity: Burst, or its default when 0.
func (c Config) burst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return max(1, int(math.Min(math.Ceil(c.RPS/10), math.MaxInt32)))
}

// validate checks an enabled limit (RPS > 0); each error is one line naming the flag.
func (c Config) validate() error {
	switch {
	case c.Burst < 0:
		return fmt.Errorf("--rate-limit-burst: must be 0 (default) or more, got %d", c.Burst)
	case float64(c.burst())/c.RPS > maxRefillSeconds:
		return fmt.Errorf("--rate-limit-burst: %d tokens at %g a second take over %g s to refill",
			c.burst(), c.RPS, float64(maxRefillSeconds))
	}
	switch c.Store {
	case StoreMemory:
		return nil
	case StoreRedis:
	default:
		return fmt.Errorf("--rate-limit-store: must be %s or %s, got %q", StoreMemory, StoreRedis, c.Store)
	}
	if _, _, err := net.SplitHostPort(c.RedisAddr); err != nil {
		return fmt.Errorf("--redis: %q is not host:port", c.RedisAddr)
	}
	if c.RedisTimeout <= 0 {
		return fmt.Errorf("--redis-timeout-ms: must be at least 1, got %d", c.RedisTimeout.Milliseconds())
	}
	return nil
}
