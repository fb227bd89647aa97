package edge

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// retryPolicy is when an idempotent call is tried again, and how long the edge waits first.
type retryPolicy struct {
	max       int           // extra attempts at most (--retries)
	base, cap time.Duration // of the full-jitter backoff
	budget    *RetryBudget
	jitter    func(ceiling time.Duration) time.Duration // rand.N; tests take the ceiling itself
}

// retryable reports whether a call that failed with err is worth another attempt: UNAVAILABLE,
// a core that could not be reached or went away, but not the core's "overloaded" refusal, since
// retrying a core that sheds load adds load exactly when it has none to spare. Every other code
// would fail again (INVALID_ARGUMENT), has no time left (DEADLINE_EXCEEDED) or may have done
// the work (INTERNAL).
func retryable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && !isOverloaded(st)
}

// backoff is the wait before retry n (0 for the first): uniform in [0, min(cap, base·2ⁿ)), the
// "full jitter" that spreads the retries of calls that failed together.
func (p *retryPolicy) backoff(n int) time.Duration {
	ceiling := p.cap
	if n < 30 && p.base<<n < p.cap {
		ceiling = p.base << n
	}
	if ceiling <= 0 {
		return 0
	}
	return p.jitter(ceiling)
}

// withRetries runs try, once per attempt, with the call's request id in the outgoing
// metadata. A failed attempt of an idempotent call is tried again while it is retryable, the
// retries are not all spent, its backoff ends before the deadline and the retry budget has
// room; otherwise its error is the call's.
func (u *upstream) withRetries(ctx context.Context, c *call, idempotent bool, try func(context.Context) error) error {
	ctx = metadata.AppendToOutgoingContext(ctx, requestIDKey, c.id)
	u.retry.budget.Call()
	for n := 0; ; n++ {
		err := try(ctx)
		if err == nil || !idempotent || n >= u.retry.max || !retryable(err) {
			return err
		}
		wait := u.retry.backoff(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			u.metrics.retries[retryNoTime].Inc()
			return err
		}
		if !u.retry.budget.Retry() {
			u.metrics.retries[retryBudgetExhausted].Inc()
			return err
		}
		u.metrics.retries[retrySent].Inc()
		if !sleep(ctx, wait) {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// sleep waits d, or until ctx is done (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
