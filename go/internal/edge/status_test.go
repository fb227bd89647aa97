package edge

import (
	"context"
	"testing"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		code   codes.Code
		status int
	}{
		{codes.OK, 200},
		{codes.InvalidArgument, 400},
		{codes.FailedPrecondition, 400},
		{codes.OutOfRange, 400},
		{codes.Unauthenticated, 401},
		{codes.PermissionDenied, 403},
		{codes.NotFound, 404},
		{codes.AlreadyExists, 409},
		{codes.Aborted, 409},
		{codes.ResourceExhausted, 429},
		{codes.Canceled, 499},
		{codes.Unimplemented, 501},
		{codes.Unavailable, 503},
		{codes.DeadlineExceeded, 504},
		{codes.Internal, 502},
		{codes.Unknown, 502},
		{codes.DataLoss, 502},
		{codes.Code(99), 502},
	} {
		if got := HTTPStatus(tc.code); got != tc.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.code, got, tc.status)
		}
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if HTTPStatus(c) == 500 {
			t.Errorf("%v is a 500", c)
		}
	}
}

// Every code the core may answer comes out as the table says, with the core's message, the
// envelope code in lower snake case, and Retry-After on 503s; never a 500.
func TestCoreStatusesMapped(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	cfg := testConfig(core.addr)
	cfg.Retries = 0
	cfg.BreakerFailures = 1000
	e := startEdge(t, cfg, Options{})
	for _, tc := range []struct {
		err        error
		status     int
		code, text string
	}{
		{status.Error(codes.InvalidArgument, "limit: bad"), 400, "invalid_argument", "limit: bad"},
		{status.Error(codes.FailedPrecondition, "not ready"), 400, "failed_precondition", "not ready"},
		{status.Error(codes.OutOfRange, "past the end"), 400, "out_of_range", "past the end"},
		{status.Error(codes.Unauthenticated, "who"), 401, "unauthenticated", "who"},
		{status.Error(codes.PermissionDenied, "no"), 403, "permission_denied", "no"},
		{status.Error(codes.NotFound, "no user"), 404, "not_found", "no user"},
		{status.Error(codes.AlreadyExists, "twice"), 409, "already_exists", "twice"},
		{status.Error(codes.Aborted, "conflict"), 409, "aborted", "conflict"},
		{status.Error(codes.ResourceExhausted, "quota"), 429, "resource_exhausted", "quota"},
		{status.Error(codes.Unimplemented, "later"), 501, "unimplemented", "later"},
		{status.Error(codes.Unavailable, "draining"), 503, "unavailable", "draining"},
		{status.Error(codes.Unavailable, "overloaded: too many calls in flight, retry later"), 503, "overloaded", "too many calls in flight, retry later"},
		{status.Error(codes.DeadlineExceeded, "the call's deadline passed"), 504, "deadline_exceeded", "deadline"},
		{status.Error(codes.Internal, "bug"), 502, "internal", "bug"},
		{status.Error(codes.Unknown, "panic"), 502, "unknown", "panic"},
		{status.Error(codes.DataLoss, "lost"), 502, "data_loss", "lost"},
		{status.Error(codes.Canceled, "the core cancelled"), 502, "cancelled", "the core cancelled"}, // a 499 is never sent
	} {
		core.onRecommend(func(context.Context, *pb.RecommendRequest) (*pb.RecommendResponse, error) { return nil, tc.err })
		resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, tc.status, tc.code, tc.text)
		if (resp.Header.Get("Retry-After") == "1") != (tc.status == 503) {
			t.Errorf("%v: Retry-After %q", tc.err, resp.Header.Get("Retry-After"))
		}
	}
	// The overloaded core was not retried, nor anything else (--retries 0).
	wantMetric(t, e.addr, `edge_retries_total{outcome="sent"} 0`)
}

func TestEnvelopeCode(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "ok", codes.Canceled: "cancelled",
		codes.InvalidArgument: "invalid_argument", codes.Unauthenticated: "unauthenticated", codes.Code(42): "unknown"} {
		if got := envelopeCode(c); got != want {
			t.Errorf("envelopeCode(%v) = %q, want %q", c, got, want)
		}
	}
}
