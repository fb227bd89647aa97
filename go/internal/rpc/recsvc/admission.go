package recsvc

import "sync/atomic"

// Limiter is the admission count: at most max calls of the Recommendations service in progress
// at once (--max-in-flight). A call beyond it is refused at once, before anything is decoded,
// ranked or allocated for it: UNAVAILABLE over gRPC, 503 over REST (the same code,
// UNAVAILABLE, in rpc_requests_total). Health checks, reflection and scrapes are never refused.
//
// The limit is fixed: unlike the fanout and workerpool services this pattern does not adapt it
// to scheduling lag, because the benchmark compares transports at the same admission.
type Limiter struct {
	max      int64
	inFlight atomic.Int64
}

// NewLimiter admits at most max calls at once.
func NewLimiter(max int) *Limiter { return &Limiter{max: int64(max)} }

// Admit takes a slot if fewer than max calls are in progress. It compares before it increments,
// so the count (and rpc_in_flight, read from it) never passes the limit.
func (l *Limiter) Admit() bool {
	for {
		n := l.inFlight.Load()
		if n >= l.max {
			return false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back the slot of an admitted call.
func (l *Limiter) Release() { l.inFlight.Add(-1) }

// InFlight is the number of admitted calls not yet finished.
func (l *Limiter) InFlight() int64 { return l.inFlight.Load() }

// Overloaded is the message of a refusal, over both transports.
const Overloaded = "too many calls in flight, retry later"
