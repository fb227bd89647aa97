package edge

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StatusClientGone is the status of a call whose client went away: counted and logged, never
// sent (nginx's 499).
const StatusClientGone = 499

// HTTPStatus is the HTTP status the edge answers for a call the core ended with c: the
// canonical mapping of google.rpc.Code (googleapis' code.proto), except that INTERNAL, UNKNOWN
// and DATA_LOSS are 502 Bad Gateway, since they are the core's failures and not the edge's: the
// edge never answers 500. A code outside 0..16 is UNKNOWN's.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return StatusClientGone
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway // Internal, Unknown, DataLoss
}

// envelopeCodes are the envelope's codes of the gRPC codes: their names in lower snake case.
var envelopeCodes = func() (out [codes.Unauthenticated + 1]string) {
	for c := range out {
		out[c] = strings.ToLower(recsvc.CodeName(codes.Code(c)))
	}
	return out
}()

// envelopeCode is c's name in lower snake case ("invalid_argument").
func envelopeCode(c codes.Code) string {
	if int(c) < len(envelopeCodes) {
		return envelopeCodes[c]
	}
	return envelopeCodes[codes.Unknown]
}

// overloadedPrefix starts the message of a core's refusal for overload (systems/rpc/README.md).
const overloadedPrefix = "overloaded:"

// isOverloaded reports whether st is the core's refusal for overload: UNAVAILABLE, "overloaded: …".
func isOverloaded(st *status.Status) bool {
	return st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), overloadedPrefix)
}

// The edge's own failures.
var (
	// errCircuitOpen is an attempt the core's breaker refused.
	errCircuitOpen = errors.New("circuit open")
	deadlinePassed = &restserver.Failure{Status: http.StatusGatewayTimeout, Code: "deadline_exceeded",
		Message: "the call's deadline (" + restserver.TimeoutHeader + ", else --budget-ms) passed"}
	clientGone   = &restserver.Failure{Status: StatusClientGone, Code: "cancelled", Message: "the client went away"}
	notEncodable = &restserver.Failure{Status: http.StatusBadGateway, Code: "internal",
		Message: "the core's answer does not encode as JSON"}
)

// failureOf is the answer to a call that ended with err, ctx being the call's context: the
// core's status mapped by HTTPStatus with the core's message, but the contract's "overloaded"
// refusal keeps its envelope code, a deadline passed at the edge gets the edge's message, and a
// CANCELLED while the client is still there (the core cancelled) is a 502, since a 499 is never
// sent.
func (s *Server) failureOf(ctx context.Context, err error) *restserver.Failure {
	if errors.Is(err, errCircuitOpen) {
		return s.circuitOpen
	}
	st := status.Convert(err)
	code := st.Code()
	switch {
	case isOverloaded(st):
		return &restserver.Failure{Status: http.StatusServiceUnavailable, Code: "overloaded",
			Message: strings.TrimSpace(strings.TrimPrefix(st.Message(), overloadedPrefix))}
	case code == codes.DeadlineExceeded && recsvc.Expired(ctx):
		return deadlinePassed
	case code == codes.Canceled:
		if f := ctxFailure(ctx); f != nil {
			return f
		}
		return &restserver.Failure{Status: http.StatusBadGateway, Code: envelopeCode(code), Message: st.Message()}
	}
	return &restserver.Failure{Status: HTTPStatus(code), Code: envelopeCode(code), Message: st.Message()}
}

// ctxFailure is the failure of a call whose context is done (504 once its deadline has passed,
// else its client has gone), or nil while it is not done.
func ctxFailure(ctx context.Context) *restserver.Failure {
	if ctx.Err() == nil {
		return nil
	}
	if recsvc.Expired(ctx) {
		return deadlinePassed
	}
	return clientGone
}
