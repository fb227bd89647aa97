package edge

import (
	"sync"
	"time"
)

// The edge's retry budget: retries may add at most 10% to the calls of the last second, plus
// 10 retries a second whatever the traffic, so that a trickle of calls can still retry.
const (
	RetryBudgetRatio  = 0.1
	RetryBudgetFloor  = 10
	RetryBudgetWindow = time.Second
)

// budgetBuckets is how many parts the window slides by.
const budgetBuckets = 10

// RetryBudget bounds the retries to a share of the calls over a sliding window, plus a floor:
// a retry is allowed while the window's retries, this one included, are at most ratio × its
// calls + floor. Without it every caller retrying its failed calls multiplies the load on a
// core that is already failing (Finagle's RetryBudget and gRPC's retry throttling have the same
// aim). The window is counted in budgetBuckets buckets, so it slides by a tenth of itself.
//
// The zero value allows nothing; use NewRetryBudget.
type RetryBudget struct {
	ratio  float64
	floor  int
	bucket time.Duration // the window's width / budgetBuckets
	epoch  time.Time     // buckets are counted from it, on the monotonic clock
	now    func() time.Time

	mu             sync.Mutex
	counts         [budgetBuckets]struct{ calls, retries int64 }
	newest         int64 // the newest bucket, counted from the epoch
	calls, retries int64 // the window's sums
}

// NewRetryBudget allows retries up to ratio × the calls of the last window, plus floor.
func NewRetryBudget(ratio float64, floor int, window time.Duration) *RetryBudget {
	return &RetryBudget{ratio: ratio, floor: floor, bucket: max(window/budgetBuckets, 1), epoch: time.Now(), now: time.Now}
}

// Call counts a call (its first attempt); each makes room for ratio retries.
func (b *RetryBudget) Call() {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.advance()
	b.counts[i].calls++
	b.calls++
}

// Retry takes a retry from the budget and reports whether there was room for it.
func (b *RetryBudget) Retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.advance()
	if float64(b.retries+1) > b.ratio*float64(b.calls)+float64(b.floor) {
		return false
	}
	b.counts[i].retries++
	b.retries++
	return true
}

// advance forgets the buckets that have left the window and returns the current one's index.
func (b *RetryBudget) advance() int {
	now := int64(b.now().Sub(b.epoch) / b.bucket)
	if now > b.newest {
		for k := b.newest + 1; k <= now && k <= b.newest+budgetBuckets; k++ {
			c := &b.counts[k%budgetBuckets]
			b.calls -= c.calls
			b.retries -= c.retries
			c.calls, c.retries = 0, 0
		}
		b.newest = now
	}
	return int(b.newest % budgetBuckets)
}
