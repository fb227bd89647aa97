package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// maxAnswerBytes is the largest message the edge takes from the core: an answer of 1,000 items
// of 4,096 features is 16 MB (the core has no send limit).
const maxAnswerBytes = 64 << 20

// reconnect is how the connection comes back after the core went away: grpc-go's default
// backoff, capped at 1 s instead of 120 s, since the core is a neighbour that restarts quickly.
var reconnect = backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// upstream is the edge's side of one core: one long-lived gRPC connection, shared by every
// call; the core's circuit breaker; and the calls, with their retries (retry.go).
type upstream struct {
	addr       string
	conn       *grpc.ClientConn
	client     pb.RecommendationsClient
	health     healthpb.HealthClient
	breaker    *gobreaker.TwoStepCircuitBreaker[struct{}]
	rejections prometheus.Counter
	retry      retryPolicy
	tracer     trace.Tracer // nil: tracing off
	metrics    *metrics
	errs       *limitedLog
}

// dial makes the connection to cfg.Core and starts connecting, so that the first call finds it
// ready; it fails only on an address gRPC cannot parse.
func dial(cfg Config, tracer trace.Tracer, m *metrics, logger *slog.Logger, errs *limitedLog) (*upstream, error) {
	conn, err := grpc.NewClient(cfg.Core,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxAnswerBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnect, MinConnectTimeout: time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("--core: %w", err)
	}
	conn.Connect()
	u := &upstream{
		addr:    cfg.Core,
		conn:    conn,
		client:  pb.NewRecommendationsClient(conn),
		health:  healthpb.NewHealthClient(conn),
		breaker: newBreaker(cfg, logger),
		retry: retryPolicy{max: cfg.Retries, base: cfg.RetryBackoff, cap: cfg.RetryBackoffMax,
			budget: NewRetryBudget(RetryBudgetRatio, RetryBudgetFloor, RetryBudgetWindow), jitter: rand.N[time.Duration]},
		tracer:  tracer,
		metrics: m,
		errs:    errs,
	}
	u.rejections = m.breaker(cfg.Core, u.breaker.State)
	return u, nil
}

// close closes the connection; calls still running fail CANCELLED.
func (u *upstream) close() error { return u.conn.Close() }

// check asks the core's health service about the server as a whole (service ""); nil when it
// answers SERVING.
func (u *upstream) check(ctx context.Context) error {
	resp, err := u.health.Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		st := status.Convert(err)
		return fmt.Errorf("health check: %s: %s", recsvc.CodeName(st.Code()), st.Message())
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check: %s", resp.GetStatus())
	}
	return nil
}

// The gRPC methods' full names, the client spans' names.
const (
	methodRecommend = "recommendations.v1.Recommendations/Recommend"
	methodStream    = "recommendations.v1.Recommendations/StreamRecommendations"
)

// recommend calls Recommend; c records the attempts.
func (u *upstream) recommend(ctx context.Context, req *pb.RecommendRequest, c *call, idempotent bool) (*pb.RecommendResponse, error) {
	var resp *pb.RecommendResponse
	err := u.withRetries(ctx, c, idempotent, func(ctx context.Context) error {
		ctx, a, err := u.begin(ctx, c, methodRecommend)
		if err != nil {
			return err
		}
		resp, err = u.client.Recommend(ctx, req)
		a.end(err)
		return err
	})
	return resp, err
}

// openStream calls StreamRecommendations and waits for its first message: until then the call
// may be retried like a unary one; after it, the answer has begun and it may not.
func (u *upstream) openStream(ctx context.Context, req *pb.RecommendRequest, c *call, idempotent bool) (*stream, error) {
	var st *stream
	err := u.withRetries(ctx, c, idempotent, func(ctx context.Context) error {
		ctx, a, err := u.begin(ctx, c, methodStream)
		if err != nil {
			return err
		}
		recv, err := u.client.StreamRecommendations(ctx, req)
		var first *pb.RecommendPage
		if err == nil {
			first, err = recv.Recv()
		}
		switch {
		case errors.Is(err, io.EOF): // no message at all: nothing matched
			a.end(nil)
			st = &stream{}
			return nil
		case err != nil:
			a.end(err)
			return err
		}
		st = &stream{first: first, recv: recv, a: a}
		return nil
	})
	return st, err
}

// stream is a StreamRecommendations call whose first message has arrived (or that ended
// without any).
type stream struct {
	first *pb.RecommendPage
	recv  grpc.ServerStreamingClient[pb.RecommendPage]
	a     *attempt // nil once ended
}

// next is the next message; io.EOF once the stream has ended well.
func (s *stream) next() (*pb.RecommendPage, error) {
	if p := s.first; p != nil {
		s.first = nil
		return p, nil
	}
	if s.a == nil {
		return nil, io.EOF
	}
	p, err := s.recv.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			s.finish(nil)
		} else {
			s.finish(err)
		}
		return nil, err
	}
	return p, nil
}

// finish ends the stream's attempt with err, if it has not ended; the call's context, cancelled
// when the handler returns, releases the gRPC stream.
func (s *stream) finish(err error) {
	if s.a != nil {
		s.a.end(err)
		s.a = nil
	}
}

// attempt is one call to the core, from the breaker's permission to its end.
type attempt struct {
	u     *upstream
	c     *call
	done  func(error) // the breaker's
	span  trace.Span  // nil with tracing off
	start time.Time
}

// begin starts an attempt of c: refused when the call's deadline has passed already (nothing is
// sent, nothing counted against the core) or when the core's circuit is open. It returns the
// attempt's context, which carries its span and traceparent.
func (u *upstream) begin(ctx context.Context, c *call, method string) (context.Context, *attempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, status.FromContextError(err).Err()
	}
	done, err := u.breaker.Allow()
	if err != nil {
		u.rejections.Inc()
		u.errs.Error("circuit_open", "call refused: core circuit open", slog.String("core", u.addr), slog.String("request_id", c.id))
		return nil, nil, errCircuitOpen
	}
	c.attempts++
	if c.attempts == 1 {
		if dl, ok := ctx.Deadline(); ok {
			c.deadlineMs = millis(time.Until(dl))
		}
	}
	a := &attempt{u: u, c: c, done: done, start: time.Now()}
	if u.tracer != nil {
		ctx, a.span = startClientSpan(ctx, u.tracer, method, c.attempts)
	}
	return ctx, a, nil
}

// end records the attempt's outcome: the breaker's count, the upstream histogram, its span, and
// a log line (rate-limited) when the core failed.
func (a *attempt) end(err error) {
	a.done(err)
	a.u.metrics.upstream.Observe(time.Since(a.start).Seconds())
	if a.span != nil {
		endClientSpan(a.span, err)
	}
	a.c.code = status.Code(err)
	if coreFailed(a.c.code) {
		st := status.Convert(err)
		a.u.errs.Error(envelopeCode(st.Code()), "core call failed",
			slog.String("core", a.u.addr), slog.String("request_id", a.c.id), slog.Int("attempt", a.c.attempts),
			slog.String("grpc_code", recsvc.CodeName(st.Code())), slog.String("message", st.Message()))
	}
}

// coreFailed reports whether a call that ended with c counts against the core: it could not be
// reached, did not answer in time, or failed. CANCELLED (the client went away) and the codes of
// a request the core refused (INVALID_ARGUMENT, …) say nothing against it.
func coreFailed(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}
