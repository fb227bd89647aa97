package edge

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
)

// authenticate sets the call's client id: the token's subject with auth on (401 with the
// verifier's challenge, or 403, when it fails), else the request's X-Client-ID.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, c *call) bool {
	if s.verifier == nil {
		c.clientID = clientID(r)
		return true
	}
	p, aerr := s.verifier.Verify(r)
	if aerr != nil {
		if aerr.Challenge != "" {
			w.Header()["Www-Authenticate"] = []string{aerr.Challenge}
		}
		s.fail(w, c, &restserver.Failure{Status: aerr.Status, Code: aerr.Code, Message: aerr.Message})
		return false
	}
	c.clientID = p.Subject
	return true
}

// admitClient asks the rate limiter about the call's client: 429 rate_limited with a
// Retry-After of whole seconds when it is over its rate. A store that failed is logged; when
// the fail policy refuses, the answer is 503 unavailable, the edge's failure, not the client's.
func (s *Server) admitClient(ctx context.Context, w http.ResponseWriter, c *call) bool {
	if s.limiter == nil {
		return true
	}
	d := s.limiter.Allow(ctx, c.clientID)
	if d.StoreError {
		s.errs.Error("rate_limit_store", "rate limit store failed",
			slog.String("request_id", c.id), slog.String("client_id", c.clientID), slog.Bool("allowed", d.Allowed))
	}
	switch {
	case d.Allowed:
		return true
	case ctx.Err() != nil: // the client went away, or the budget ran out, while the store was asked
		s.fail(w, c, ctxFailure(ctx))
		return false
	case d.StoreError:
		s.fail(w, c, rateLimitStoreDown)
		return false
	}
	seconds := max(1, int(math.Ceil(d.RetryAfter.Seconds())))
	w.Header()["Retry-After"] = []string{strconv.Itoa(seconds)}
	s.fail(w, c, &restserver.Failure{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "rate limit exceeded for client " + c.clientID + ", retry after " + strconv.Itoa(seconds) + " s"})
	return false
}

var rateLimitStoreDown = &restserver.Failure{Status: http.StatusServiceUnavailable, Code: "unavailable",
	Message: "the rate limit store is unavailable"}
