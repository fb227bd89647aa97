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

// A core that times out opens its circuit after --breaker-failures calls; while open the edge
// answers at once without calling it; after --breaker-open-ms a few calls go through, and their
// success closes it.
func TestBreakerOpensAndCloses(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	var slow atomic.Bool
	slow.Store(true)
	core.onRecommend(func(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
		if slow.Load() {
			<-ctx.Done()
			return nil, status.Error(codes.DeadlineExceeded, "too slow")
		}
		return &pb.RecommendResponse{UserId: req.GetUserId()}, nil
	})
	cfg := testConfig(core.addr)
	cfg.BreakerFailures, cfg.BreakerOpen = 3, 300*time.Millisecond
	cfg.Budget = 50 * time.Millisecond
	e := startEdge(t, cfg, Options{})
	open := `edge_breaker_state{core="` + core.addr + `"} `
	wantMetric(t, e.addr, open+"0")
	for range 3 {
		resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, 504, "deadline_exceeded", "")
	}
	wantMetric(t, e.addr, open+"2")
	seen := len(core.calls())
	for _, path := range []string{restserver.RecommendPath, restserver.StreamPath} {
		start := time.Now()
		resp, body := post(t, e.addr, path, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, 503, "unavailable", "circuit open: core "+core.addr)
		if took := time.Since(start); took > 25*time.Millisecond || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("an open circuit answered after %v, Retry-After %q", took, resp.Header.Get("Retry-After"))
		}
	}
	if len(core.calls()) != seen {
		t.Error("the core was called while its circuit was open")
	}
	wantMetric(t, e.addr, `edge_breaker_rejections_total{core="`+core.addr+`"} 2`)
	if n := len(e.logs.lines(t, "core circuit open")); n != 1 {
		t.Errorf("%d state-change lines to open, want 1", n)
	}
	if n := len(e.logs.lines(t, "call refused: core circuit open")); n != 1 {
		t.Errorf("%d lines for 2 refusals in a second, want 1", n)
	}

	slow.Store(false)
	time.Sleep(cfg.BreakerOpen)
	wantMetric(t, e.addr, open+"1") // half-open
	for range breakerProbes {
		if resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`); resp.StatusCode != 200 {
			t.Fatalf("half-open: %d %s", resp.StatusCode, body)
		}
	}
	wantMetric(t, e.addr, open+"0")
}

// The core refusing requests, or clients leaving, says nothing against it.
func TestBreakerIgnoresClientErrors(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	core.onRecommend(func(context.Context, *pb.RecommendRequest) (*pb.RecommendResponse, error) {
		return nil, status.Error(codes.InvalidArgument, "no")
	})
	cfg := testConfig(core.addr)
	cfg.BreakerFailures = 2
	e := startEdge(t, cfg, Options{})
	for range 5 {
		resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, 400, "invalid_argument", "no")
	}
	wantMetric(t, e.addr, `edge_breaker_state{core="`+core.addr+`"} 0`)
	for _, c := range []codes.Code{codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted} {
		if coreFailed(c) {
			t.Errorf("%v counts against the core", c)
		}
	}
	for _, c := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss} {
		if !coreFailed(c) {
			t.Errorf("%v does not count against the core", c)
		}
	}
}
