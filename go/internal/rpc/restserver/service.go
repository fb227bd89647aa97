// Package restserver is the rpc pattern's REST/JSON server in Go: the Recommendations service of
// proto/recommendations/v1 as POST /v1/recommend (one JSON answer) and POST
// /v1/recommend:stream (NDJSON, one RecommendPage a line, flushed a line at a time), with
// GET /healthz and GET /metrics, on the go/internal/serve scaffold (its limits on malformed
// requests, time-outs and graceful shutdown).
//
// A call is admitted or refused (503 overloaded) first; then its Request-Timeout-Ms header is
// read (400 when malformed), its body (413 over 1 MiB, 400 when not a RecommendRequest in
// protojson's mapping, unknown fields included) and validated (400 with ranking.Validate's
// message). The deadline is checked before ranking, before answering and before each line of a
// stream (504 deadline_exceeded; once a stream's 200 is out, a last line holding the error
// envelope ends it). Every answer of the two RPC paths is counted in the metrics under its RPC's
// name and the gRPC code its status maps to.
package restserver

import (
	"context"
	"net/http"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"google.golang.org/grpc/codes"
)

// The paths of the two RPCs.
const (
	RecommendPath = "/v1/recommend"
	StreamPath    = "/v1/recommend:stream"
)

// WriteSlack is how long past its deadline a stream's writes may block.
const WriteSlack = time.Second

// statusClientGone is counted (CANCELLED) for a call whose client went away; never sent.
const statusClientGone = 499

// Service is the REST server's handler.
type Service struct {
	core    *recsvc.Service
	lim     *recsvc.Limiter
	metrics *recsvc.Metrics

	// Tests only, set before serving: called before ranking and before each line of a stream.
	beforeRank func(ctx context.Context)
	beforePage func(page int)
}

// New builds the service of cfg (cfg.Listen is serve.Run's business).
func New(cfg recsvc.Config) (*Service, error) {
	core, err := recsvc.New(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{core: core, lim: recsvc.NewLimiter(cfg.MaxInFlight)}
	s.metrics = recsvc.NewMetrics(s.lim)
	return s, nil
}

// Fixed answers, rendered once: 503s come in bursts exactly when there is least time to spare.
// Exported for the edge, which answers this contract's errors too.
var (
	HealthyBody    = []byte(`{"status":"ok"}`)
	NotFoundBody   = httpjson.Envelope("not_found", "no such path")
	PostOnlyBody   = httpjson.Envelope("method_not_allowed", "only POST is allowed here")
	GetOnlyBody    = httpjson.Envelope("method_not_allowed", "only GET is allowed here")
	OverloadedBody = httpjson.Envelope("overloaded", recsvc.Overloaded)
	ndjson         = []string{"application/x-ndjson"}
)

// ServeHTTP routes a request; paths are matched exactly. Only the answers of the two RPC paths
// to POST are counted: a 404 or 405 is no call of an RPC.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case RecommendPath, StreamPath:
		if r.Method != http.MethodPost {
			w.Header()["Allow"] = []string{http.MethodPost}
			httpjson.Write(w, http.StatusMethodNotAllowed, PostOnlyBody)
			return
		}
		start := time.Now()
		meth := recsvc.Recommend
		if r.URL.Path == StreamPath {
			meth = recsvc.StreamRecommendations
		}
		code := s.call(w, r, meth, start)
		s.metrics.Observe(meth, code, time.Since(start))
	case "/healthz", "/metrics":
		if r.Method != http.MethodGet {
			w.Header()["Allow"] = []string{http.MethodGet}
			httpjson.Write(w, http.StatusMethodNotAllowed, GetOnlyBody)
		} else if r.URL.Path == "/healthz" {
			httpjson.Write(w, http.StatusOK, HealthyBody)
		} else {
			s.metrics.Handler().ServeHTTP(w, r)
		}
	default:
		httpjson.Write(w, http.StatusNotFound, NotFoundBody)
	}
}

// call serves one call of meth and returns the code it ended with.
func (s *Service) call(w http.ResponseWriter, r *http.Request, meth recsvc.Method, start time.Time) codes.Code {
	if !s.lim.Admit() {
		w.Header()["Retry-After"] = httpjson.RetryAfterOne
		httpjson.Write(w, http.StatusServiceUnavailable, OverloadedBody)
		return recsvc.CodeForStatus(http.StatusServiceUnavailable)
	}
	defer s.lim.Release()

	dl, hasDeadline, f := Deadline(r, start)
	if f != nil {
		return fail(w, f)
	}
	ctx := r.Context()
	if hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	req, f := ReadRequest(w, r, dl)
	if f != nil {
		return fail(w, f)
	}
	if msg := recsvc.Check(req); msg != "" {
		return fail(w, invalid(msg))
	}
	if s.beforeRank != nil {
		s.beforeRank(ctx)
	}
	if f := ctxFailure(ctx); f != nil {
		return fail(w, f)
	}
	items := s.core.Items(req)
	if meth == recsvc.StreamRecommendations {
		return s.stream(ctx, w, dl, recsvc.Pages(items, req.GetPageSize()))
	}
	body, err := Marshal(nil, &pb.RecommendResponse{UserId: req.GetUserId(), Items: items})
	if err != nil { // cannot happen: every field is valid
		return fail(w, &Failure{http.StatusInternalServerError, "internal", "the answer did not encode"})
	}
	if f := ctxFailure(ctx); f != nil {
		return fail(w, f)
	}
	httpjson.Write(w, http.StatusOK, body)
	return recsvc.CodeForStatus(http.StatusOK)
}

// stream writes the pages as NDJSON, each line flushed; the 200 goes out with the first line
// (or alone, with an empty body, when there is none). Past the deadline, a last line with the
// error envelope ends the stream; a client that stops reading holds its call no more than
// WriteSlack past the deadline (the slack leaves time to write that last line).
func (s *Service) stream(ctx context.Context, w http.ResponseWriter, dl time.Time, pages []*pb.RecommendPage) codes.Code {
	rc := http.NewResponseController(w)
	if !dl.IsZero() {
		_ = rc.SetWriteDeadline(dl.Add(WriteSlack))
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	var line []byte
	for i, page := range pages {
		if s.beforePage != nil {
			s.beforePage(i)
		}
		if f := ctxFailure(ctx); f != nil {
			if i == 0 {
				return fail(w, f)
			}
			if f.Status == statusClientGone {
				return recsvc.CodeForStatus(statusClientGone)
			}
			_, _ = w.Write(append(httpjson.Envelope(f.Code, f.Message), '\n'))
			_ = rc.Flush()
			return recsvc.CodeForStatus(f.Status)
		}
		var err error
		line, err = Marshal(line[:0], page)
		if err != nil { // cannot happen: every field is valid
			return fail(w, &Failure{http.StatusInternalServerError, "internal", "the answer did not encode"})
		}
		if i == 0 {
			w.Header()["Content-Type"] = ndjson
			w.WriteHeader(http.StatusOK)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err == nil {
			err = rc.Flush()
		}
		if err != nil { // the client went away, or stopped reading until the deadline
			if recsvc.Expired(ctx) {
				return recsvc.CodeForStatus(http.StatusGatewayTimeout)
			}
			return recsvc.CodeForStatus(statusClientGone)
		}
	}
	if len(pages) == 0 {
		w.Header()["Content-Type"] = ndjson
		w.Header()["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusOK)
	}
	return recsvc.CodeForStatus(http.StatusOK)
}

// ctxFailure is the failure of a call whose context is done: 504 once its deadline has passed,
// else its client has gone; nil while it is not done.
func ctxFailure(ctx context.Context) *Failure {
	if ctx.Err() == nil {
		return nil
	}
	if recsvc.Expired(ctx) {
		return errDeadline
	}
	return &Failure{statusClientGone, "cancelled", "the client went away"}
}

// fail answers f (nothing is sent to a client that has gone) and returns its code.
func fail(w http.ResponseWriter, f *Failure) codes.Code {
	if f.Status != statusClientGone {
		httpjson.Write(w, f.Status, httpjson.Envelope(f.Code, f.Message))
	}
	return recsvc.CodeForStatus(f.Status)
}
