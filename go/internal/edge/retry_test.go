package edge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errUnavailable = status.Error(codes.Unavailable, "connection reset")

// failFirst makes the core fail its first n calls with err, then rank; it returns the count
// of calls.
func failFirst(core *testCore, n int32, err error) *atomic.Int32 {
	var calls atomic.Int32
	core.onRecommend(func(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
		if calls.Add(1) <= n {
			return nil, err
		}
		return &pb.RecommendResponse{UserId: req.GetUserId(), Items: core.svc.Items(req)}, nil
	})
	return &calls
}

func TestRetriesOnUnavailable(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	calls := failFirst(core, 2, status.Error(codes.Unavailable, "connection reset"))
	e := startEdge(t, testConfig(core.addr), Options{})
	resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, RequestIDHeader, "r1")
	if resp.StatusCode != 200 || calls.Load() != 3 {
		t.Fatalf("%d %s after %d calls, want 200 after 3", resp.StatusCode, body, calls.Load())
	}
	wantMetric(t, e.addr, `edge_retries_total{outcome="sent"} 2`)
	// Every attempt carried the same request id.
	for _, c := range core.calls() {
		if got := c.md.Get(requestIDKey); len(got) != 1 || got[0] != "r1" {
			t.Errorf("an attempt with x-request-id %q", got)
		}
	}
	if l := e.logs.lines(t, "request"); len(l) != 1 || l[0]["attempts"] != 3.0 || l[0]["grpc_code"] != "OK" {
		t.Errorf("log %v", l)
	}

	// Three failures are one too many for --retries 2: the last one is the answer.
	calls = failFirst(core, 3, status.Error(codes.Unavailable, "connection reset"))
	resp, body = post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
	wantError(t, resp, body, 503, "unavailable", "connection reset")
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
}

// An overloaded core, any code but UNAVAILABLE, and a route that is not idempotent are not
// retried.
func TestNoRetry(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	for _, err := range []error{
		status.Error(codes.Unavailable, "overloaded: too many calls in flight, retry later"),
		status.Error(codes.Internal, "bug"),
		status.Error(codes.InvalidArgument, "no"),
	} {
		calls := failFirst(core, 1, err)
		resp, _ := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
		if resp.StatusCode == 200 || calls.Load() != 1 {
			t.Errorf("%v: %d after %d calls, want the error after 1", err, resp.StatusCode, calls.Load())
		}
	}
	calls := failFirst(core, 1, status.Error(codes.Unavailable, "connection reset"))
	c := &call{id: "not-idempotent"}
	_, err := e.up.recommend(context.Background(), &pb.RecommendRequest{UserId: "a", Limit: 1}, c, false)
	if status.Code(err) != codes.Unavailable || calls.Load() != 1 || c.attempts != 1 {
		t.Errorf("not idempotent: %v after %d calls", err, calls.Load())
	}
	wantMetric(t, e.addr, `edge_retries_total{outcome="sent"} 0`)
}

// Once the retry budget is spent, failed calls are answered after one attempt.
func TestRetryBudgetExhausted(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	calls := failFirst(core, 1000, status.Error(codes.Unavailable, "connection refused"))
	cfg := testConfig(core.addr)
	cfg.BreakerFailures = 1000
	e := startEdge(t, cfg, Options{})
	e.up.retry.budget = NewRetryBudget(0, 3, time.Hour) // 3 retries, whatever the traffic
	for range 4 {
		resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, 503, "unavailable", "connection refused")
	}
	// 4 calls, 3 retries (2 + 1), then each call's first retry refused: 7 attempts.
	if n := calls.Load(); n != 7 {
		t.Errorf("%d attempts, want 7", n)
	}
	wantMetric(t, e.addr, `edge_retries_total{outcome="sent"} 3`)
	wantMetric(t, e.addr, `edge_retries_total{outcome="budget_exhausted"} 3`)
}

// A retry whose backoff would end past the deadline is not made.
func TestRetryNeverPastTheDeadline(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	calls := failFirst(core, 1000, status.Error(codes.Unavailable, "connection refused"))
	cfg := testConfig(core.addr)
	cfg.RetryBackoff, cfg.RetryBackoffMax = 80*time.Millisecond, 80*time.Millisecond
	e := startEdge(t, cfg, Options{})
	e.up.retry.jitter = func(ceiling time.Duration) time.Duration { return ceiling } // no luck involved
	start := time.Now()
	resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, restserver.TimeoutHeader, "50")
	wantError(t, resp, body, 503, "unavailable", "")
	if took := time.Since(start); took > 50*time.Millisecond || calls.Load() != 1 {
		t.Errorf("answered after %v and %d attempts, want before the 50 ms deadline after 1", took, calls.Load())
	}
	wantMetric(t, e.addr, `edge_retries_total{outcome="deadline"} 1`)
	// With time for one 80 ms wait but not two, one retry.
	resp, _ = post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, restserver.TimeoutHeader, "150")
	if resp.StatusCode != 503 || calls.Load() != 3 {
		t.Errorf("%d after %d attempts in all, want 503 after 3", resp.StatusCode, calls.Load())
	}
}

func TestBackoff(t *testing.T) {
	p := retryPolicy{base: 5 * time.Millisecond, cap: 50 * time.Millisecond,
		jitter: func(ceiling time.Duration) time.Duration { return ceiling }}
	for n, want := range []time.Duration{5, 10, 20, 40, 50, 50} {
		if got := p.backoff(n); got != want*time.Millisecond {
			t.Errorf("backoff(%d) ceiling %v, want %v", n, got, want*time.Millisecond)
		}
	}
	if got := p.backoff(100); got != 50*time.Millisecond {
		t.Errorf("backoff(100) = %v", got)
	}
}
