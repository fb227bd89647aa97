package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// brokenStore fails every take.
type brokenStore struct{}

func (brokenStore) take(context.Context, string) (bool, time.Duration, error) {
	return false, 0, errors.New("connection refused")
}
func (brokenStore) close() error { return nil }

func TestAllowCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, err := New(Config{RPS: 1, Burst: 2, Store: StoreMemory}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		l.Allow(context.Background(), "k")
	}
	d := l.Allow(context.Background(), "k")
	if d.Allowed || d.StoreError || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("4th call: %+v, want refused with RetryAfter in (0, 1s]", d)
	}
	if a, r := counterValue(t, reg, "edge_ratelimit_decisions_total", "result", "allowed"),
		counterValue(t, reg, "edge_ratelimit_decisions_total", "result", "refused"); a != 2 || r != 2 {
		t.Fatalf("decisions allowed %v refused %v, want 2 and 2", a, r)
	}
}

func TestFailPolicy(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(policyName(open), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			l, err := New(Config{RPS: 1, Store: StoreMemory, FailOpen: open}, reg)
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			l.(*limiter).store = brokenStore{}
			want := Decision{Allowed: true, StoreError: true}
			if !open {
				want = Decision{RetryAfter: FailClosedRetryAfter, StoreError: true}
			}
			if d := l.Allow(context.Background(), "k"); d != want {
				t.Fatalf("Allow = %+v, want %+v", d, want)
			}
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			if d := l.Allow(gone, "k"); d != want {
				t.Fatalf("Allow (caller gone) = %+v, want %+v", d, want)
			}
			if n := counterValue(t, reg, "edge_ratelimit_store_errors_total", "policy", policyName(open)); n != 1 {
				t.Fatalf("store errors %v, want 1 (a caller that left is not counted)", n)
			}
			result := "refused"
			if open {
				result = "allowed"
			}
			if n := counterValue(t, reg, "edge_ratelimit_decisions_total", "result", result); n != 2 {
				t.Fatalf("decisions %s %v, want 2", result, n)
			}
		})
	}
}
