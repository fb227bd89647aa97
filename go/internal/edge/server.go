// Package edge is an HTTP edge in front of the rpc pattern's gRPC servers, "the core": it takes
// go-rest's REST/JSON calls (POST /v1/recommend, one JSON answer; POST /v1/recommend:stream,
// NDJSON lines; the same bodies, answers and errors, systems/rpc/README.md) and makes each a
// gRPC call to the core, over one long-lived connection.
//
// A call goes through, in order: admission (--max-in-flight: 503 overloaded); its request id
// (X-Request-ID, taken or made, echoed in every answer, sent to the core as metadata); auth
// (go/internal/edge/auth: 401 with its challenge, or 403); rate limiting by client id
// (go/internal/edge/ratelimit: 429 rate_limited); its deadline (Request-Timeout-Ms, else
// --budget-ms, from its arrival) and body (restserver's reading and checks: 400, 413, 504); then
// the core (upstream.go): the gRPC deadline is the call's, so the core gets what is left of
// it; an idempotent route's call is retried on UNAVAILABLE (retry.go) within a retry budget
// (budget.go); the core's circuit breaker refuses calls while open (breaker.go); and the core's
// status becomes the HTTP answer (status.go). metrics.go, logging.go and tracing.go record it.
package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/patternbench/patternbench/go/internal/edge/auth"
	"github.com/patternbench/patternbench/go/internal/edge/ratelimit"
	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// routeID is one of the two RPC routes.
type routeID int

const (
	routeRecommend routeID = iota
	routeStream
	numRoutes
)

// route is what the edge knows of a route. Idempotent routes may be retried: both are, since a
// recommendation reads and changes nothing (a stream only until its first message: after it,
// the answer has begun).
type route struct {
	path       string        // also the metrics' route label
	method     recsvc.Method // its RPC, the contract metrics' method label
	idempotent bool
}

var routes = [numRoutes]route{
	routeRecommend: {path: restserver.RecommendPath, method: recsvc.Recommend, idempotent: true},
	routeStream:    {path: restserver.StreamPath, method: recsvc.StreamRecommendations, idempotent: true},
}

// call is what one call did, for its metrics, its span and its log line.
type call struct {
	id, clientID string
	traceID      string     // "" with tracing off
	status       int        // the HTTP status it ended with (499: its client went away)
	attempts     int        // calls to the core
	code         codes.Code // the last attempt's
	deadlineMs   float64    // what was left of its deadline when its first attempt started
}

// Server is the edge's HTTP handler.
type Server struct {
	cfg      Config
	up       *upstream
	lim      *recsvc.Limiter
	verifier auth.Verifier     // nil: auth off
	limiter  ratelimit.Limiter // nil: no rate limit
	tracer   trace.Tracer      // nil: tracing off
	provider *sdktrace.TracerProvider
	logger   *slog.Logger
	errs     *limitedLog
	metrics  *metrics

	circuitOpen *restserver.Failure
}

// Options are what New takes beside the Config; the zero value builds everything from it.
type Options struct {
	Logger *slog.Logger // nil: NewLogger(os.Stderr)
	// TracerProvider, when set, traces every call with it whatever Config.Trace says (tests use
	// the SDK's in-memory recorder); the caller shuts it down.
	TracerProvider trace.TracerProvider
	// Verifier and Limiter, when set, stand in for those of Config.Auth and Config.RateLimit.
	Verifier auth.Verifier
	Limiter  ratelimit.Limiter
}

// instrumentation is the tracer's name: this package.
const instrumentation = "github.com/patternbench/patternbench/go/internal/edge"

// New builds the edge of cfg and starts connecting to its core; Close releases what it holds.
// cfg.Listen is the caller's business (Run serves it).
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, lim: recsvc.NewLimiter(cfg.MaxInFlight), logger: opts.Logger,
		verifier: opts.Verifier, limiter: opts.Limiter}
	if s.logger == nil {
		s.logger = NewLogger(os.Stderr)
	}
	s.errs = newLimitedLog(s.logger)
	s.metrics = newMetrics(s.lim)
	s.circuitOpen = &restserver.Failure{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "circuit open: core " + cfg.Core}
	var err error
	if s.verifier == nil {
		if s.verifier, err = auth.New(cfg.Auth); err != nil {
			return nil, err
		}
	}
	switch {
	case opts.TracerProvider != nil:
		s.tracer = opts.TracerProvider.Tracer(instrumentation)
	case cfg.Trace == "otlp":
		if s.provider, err = newTracerProvider(ctx, cfg); err != nil {
			return nil, err
		}
		s.tracer = s.provider.Tracer(instrumentation)
	}
	if s.limiter == nil {
		if s.limiter, err = ratelimit.New(cfg.RateLimit, s.metrics.registry); err != nil {
			return nil, errors.Join(err, s.shutdownTracing(ctx))
		}
	}
	if s.up, err = dial(cfg, s.tracer, s.metrics, s.logger, s.errs); err != nil {
		return nil, errors.Join(err, s.closeLimiter(), s.shutdownTracing(ctx))
	}
	return s, nil
}

// Close flushes the spans not yet sent and closes the core's connection and the rate limiter;
// after serving, once no call is in flight.
func (s *Server) Close(ctx context.Context) error {
	return errors.Join(s.shutdownTracing(ctx), s.up.close(), s.closeLimiter())
}

func (s *Server) shutdownTracing(ctx context.Context) error {
	if s.provider == nil {
		return nil
	}
	return s.provider.Shutdown(ctx)
}

func (s *Server) closeLimiter() error {
	if s.limiter == nil {
		return nil
	}
	return s.limiter.Close()
}

// ServeHTTP routes a request; paths are matched exactly. Every answer carries the request's id.
// Only the calls of the two RPC routes are counted and logged: not 404s, 405s, health checks or
// scrapes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := numRoutes
	switch r.URL.Path {
	case restserver.RecommendPath:
		rt = routeRecommend
	case restserver.StreamPath:
		rt = routeStream
	case "/healthz", "/metrics":
		setRequestID(w, r)
		if r.Method != http.MethodGet {
			w.Header()["Allow"] = []string{http.MethodGet}
			httpjson.Write(w, http.StatusMethodNotAllowed, restserver.GetOnlyBody)
		} else if r.URL.Path == "/healthz" {
			s.serveHealth(w, r)
		} else {
			s.metrics.handler.ServeHTTP(w, r)
		}
		return
	default:
		setRequestID(w, r)
		httpjson.Write(w, http.StatusNotFound, restserver.NotFoundBody)
		return
	}
	if r.Method != http.MethodPost {
		setRequestID(w, r)
		w.Header()["Allow"] = []string{http.MethodPost}
		httpjson.Write(w, http.StatusMethodNotAllowed, restserver.PostOnlyBody)
		return
	}
	start := time.Now()
	c := &call{}
	s.serveCall(w, r, rt, c, start)
	d := time.Since(start)
	s.metrics.observe(rt, c.status, d.Seconds())
	if s.cfg.LogRequests {
		s.logRequest(r, c, d)
	}
}

// setRequestID puts the request's id (its own or a new one) on the answer and returns it.
func setRequestID(w http.ResponseWriter, r *http.Request) string {
	id := requestID(r)
	w.Header()[canonicalRequestID] = []string{id}
	return id
}

// serveCall serves one call of rt up to the core, which answer.go's methods call.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, rt routeID, c *call, start time.Time) {
	if !s.lim.Admit() {
		c.id = setRequestID(w, r)
		w.Header()["Retry-After"] = httpjson.RetryAfterOne
		s.write(w, c, http.StatusServiceUnavailable, restserver.OverloadedBody)
		return
	}
	defer s.lim.Release()
	c.id = setRequestID(w, r)

	ctx := r.Context()
	if s.tracer != nil {
		var span trace.Span
		ctx, span = startServerSpan(ctx, s.tracer, r)
		if sc := span.SpanContext(); sc.IsValid() {
			c.traceID = sc.TraceID().String()
		}
		defer endServerSpan(span, c)
	}
	// A malformed Request-Timeout-Ms is answered after auth and rate limiting, like the body;
	// until then the call runs on --budget-ms.
	dl, ok, badTimeout := restserver.Deadline(r, start)
	if !ok {
		dl = start.Add(s.cfg.Budget)
	}
	ctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()

	if !s.authenticate(w, r, c) || !s.admitClient(ctx, w, c) {
		return
	}
	if badTimeout != nil {
		s.fail(w, c, badTimeout)
		return
	}
	req, f := restserver.ReadRequest(w, r, dl)
	if f != nil {
		s.fail(w, c, f)
		return
	}
	if msg := recsvc.Check(req); msg != "" {
		s.fail(w, c, &restserver.Failure{Status: http.StatusBadRequest, Code: "invalid_argument", Message: msg})
		return
	}
	if rt == routeStream {
		s.answerStream(ctx, w, req, c, dl)
	} else {
		s.answer(ctx, w, req, c)
	}
}
