package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/httpjson"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HealthTimeout bounds /healthz's question to the core.
const HealthTimeout = 250 * time.Millisecond

var ndjson = []string{"application/x-ndjson"}

// answer calls Recommend and answers as go-rest does: the answer in restserver's JSON, or the
// core's status mapped (status.go). As in go-rest, a deadline that passes while the answer is
// encoded is a 504.
func (s *Server) answer(ctx context.Context, w http.ResponseWriter, req *pb.RecommendRequest, c *call) {
	resp, err := s.up.recommend(ctx, req, c, routes[routeRecommend].idempotent)
	if err != nil {
		s.fail(w, c, s.failureOf(ctx, err))
		return
	}
	body, err := restserver.Marshal(nil, resp)
	if err != nil { // a core that sends a string that is not UTF-8
		s.fail(w, c, notEncodable)
		return
	}
	if f := ctxFailure(ctx); f != nil {
		s.fail(w, c, f)
		return
	}
	s.write(w, c, http.StatusOK, body)
}

// answerStream calls StreamRecommendations and writes its messages as go-rest does: NDJSON,
// one line flushed per message, the 200 with the first line (or alone, with an empty body,
// when there is none). An error before the first message is an error answer; after it, a last
// line with the envelope ends the stream, and the call is counted under that error's status.
// Writes may block at most restserver.WriteSlack past the deadline.
func (s *Server) answerStream(ctx context.Context, w http.ResponseWriter, req *pb.RecommendRequest, c *call, dl time.Time) {
	st, err := s.up.openStream(ctx, req, c, routes[routeStream].idempotent)
	if err != nil {
		s.fail(w, c, s.failureOf(ctx, err))
		return
	}
	defer func() { st.finish(ctxStatus(ctx)) }() // when the edge stops before the stream's end
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(dl.Add(restserver.WriteSlack))
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	var line []byte
	for i := 0; ; i++ {
		page, err := st.next()
		f := ctxFailure(ctx)
		switch {
		case errors.Is(err, io.EOF):
			if i == 0 {
				w.Header()["Content-Type"] = ndjson
				w.Header()["Content-Length"] = []string{"0"}
				w.WriteHeader(http.StatusOK)
			}
			c.status = http.StatusOK
			return
		case err != nil:
			f = s.failureOf(ctx, err)
		case f == nil:
			if line, err = restserver.Marshal(line[:0], page); err != nil {
				f = notEncodable
			}
		}
		if f != nil {
			if i == 0 {
				s.fail(w, c, f)
			} else {
				s.failLine(w, rc, c, f)
			}
			return
		}
		if i == 0 {
			w.Header()["Content-Type"] = ndjson
			w.WriteHeader(http.StatusOK)
			c.status = http.StatusOK
		}
		line = append(line, '\n')
		if _, err = w.Write(line); err == nil {
			err = rc.Flush()
		}
		if err != nil { // the client went away, or stopped reading until the deadline
			c.status = StatusClientGone
			if recsvc.Expired(ctx) {
				c.status = http.StatusGatewayTimeout
			}
			return
		}
	}
}

// ctxStatus is the gRPC status that ends a stream the edge stopped reading: DEADLINE_EXCEEDED
// once the deadline has passed (the breaker counts it), else CANCELLED (it does not).
func ctxStatus(ctx context.Context) error {
	if recsvc.Expired(ctx) {
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	return status.Error(codes.Canceled, "the edge stopped reading the stream")
}

// write sends a whole answer and records its status.
func (s *Server) write(w http.ResponseWriter, c *call, status int, body []byte) {
	c.status = status
	httpjson.Write(w, status, body)
}

// fail answers f, with Retry-After: 1 on a 503; nothing is sent to a client that has gone.
func (s *Server) fail(w http.ResponseWriter, c *call, f *restserver.Failure) {
	c.status = f.Status
	if f.Status == StatusClientGone {
		return
	}
	if f.Status == http.StatusServiceUnavailable {
		w.Header()["Retry-After"] = httpjson.RetryAfterOne
	}
	httpjson.Write(w, f.Status, httpjson.Envelope(f.Code, f.Message))
}

// failLine ends a stream whose 200 is out with a last line holding f's envelope.
func (s *Server) failLine(w http.ResponseWriter, rc *http.ResponseController, c *call, f *restserver.Failure) {
	c.status = f.Status
	if f.Status == StatusClientGone {
		return
	}
	_, _ = w.Write(append(httpjson.Envelope(f.Code, f.Message), '\n'))
	_ = rc.Flush()
}

// serveHealth answers 200 {"status":"ok"} when the core's health service answers SERVING
// within HealthTimeout, else 503 with the reason.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
	defer cancel()
	if err := s.up.check(ctx); err != nil {
		httpjson.Write(w, http.StatusServiceUnavailable, httpjson.Envelope("unavailable", "core "+s.cfg.Core+": "+err.Error()))
		return
	}
	httpjson.Write(w, http.StatusOK, restserver.HealthyBody)
}
