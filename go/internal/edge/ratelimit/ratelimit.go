package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FailClosedRetryAfter is the RetryAfter of a request refused because the store failed.
const FailClosedRetryAfter = time.Second

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, the time until the bucket holds a token again (at least
	// 1 ms with redis, which answers in whole milliseconds).
	RetryAfter time.Duration
	// StoreError: the store failed, and Allowed is what the fail policy chose.
	StoreError bool
}

// Limiter admits or refuses requests by key (the client id); safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string) Decision
	// Close stops the memory store's sweeper or closes the redis pool.
	Close() error
}

// store takes one token from key's bucket: ok, or how long until one is there.
type store interface {
	take(ctx context.Context, key string) (ok bool, retry time.Duration, err error)
	close() error
}

// New builds c's Limiter: nil (and no error) when c.RPS is 0. It registers on reg (none when
// nil)
//
//	edge_ratelimit_decisions_total{result="allowed"|"refused"}  every decision, fail policy's included
//	edge_ratelimit_store_errors_total{policy="open"|"closed"}   store failures, by the policy applied
//
// A redis Limiter does not reach redis here: a server down at start is a store error per call,
// as later, and is used as soon as it answers. The error is one line naming the flag at fault.
func New(c Config, reg prometheus.Registerer) (Limiter, error) {
	if math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0) || c.RPS < 0 {
		return nil, fmt.Errorf("--rate-limit-rps: must be 0 (off) or a positive number, got %g", c.RPS)
	}
	if c.RPS == 0 {
		return nil, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	l := &limiter{failOpen: c.FailOpen}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_ratelimit_decisions_total",
		Help: "Rate-limit decisions, by result; those made by the fail policy included.",
	}, []string{"result"})
	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_ratelimit_store_errors_total",
		Help: "Rate-limit store failures (redis down or slower than --redis-timeout-ms), by the fail policy applied.",
	}, []string{"policy"})
	l.allowed = decisions.WithLabelValues("allowed")
	l.refused = decisions.WithLabelValues("refused")
	l.storeErrors = storeErrors.WithLabelValues(policyName(c.FailOpen))
	if reg != nil {
		for _, col := range []prometheus.Collector{decisions, storeErrors} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("ratelimit: registering metrics: %w", err)
			}
		}
	}
	if c.Store == StoreRedis {
		l.store = newRedisStore(c)
	} else {
		l.store = newMemoryStore(c.RPS, c.burst(), nil)
	}
	return l, nil
}

// limiter applies the fail policy to its store's answers and counts them.
type limiter struct {
	store                         store
	failOpen                      bool
	allowed, refused, storeErrors prometheus.Counter
}

func (l *limiter) Allow(ctx context.Context, key string) Decision {
	ok, retry, err := l.store.take(ctx, key)
	var d Decision
	switch {
	case err == nil:
		d = Decision{Allowed: ok, RetryAfter: retry}
	case l.failOpen:
		d = Decision{Allowed: true, StoreError: true}
	default:
		d = Decision{RetryAfter: FailClosedRetryAfter, StoreError: true}
	}
	// A caller that gave up (its client went away) is not the store's failure.
	if err != nil && ctx.Err() == nil {
		l.storeErrors.Inc()
	}
	if d.Allowed {
		l.allowed.Inc()
	} else {
		l.refused.Inc()
	}
	return d
}

func (l *limiter) Close() error { return l.store.close() }
