package loadgen

import (
	"context"
	"time"
)

// Clock is the scheduler's and the workers' time source: offsets from the
// start of the run. The real one is monotonic; tests inject a fake one so
// that scheduling is checked without sleeping.
type Clock interface {
	// Now returns the time elapsed since the clock's origin.
	Now() time.Duration
	// SleepUntil blocks until Now() ≥ t or done is closed; false means done.
	SleepUntil(done <-chan struct{}, t time.Duration) bool
}

// preciseFrom is the shortest wait worth a precise sleep (see realClock).
const preciseFrom = 50 * time.Microsecond

// realClock measures from origin with the monotonic clock. Its sleeps are
// made for the scheduler goroutine alone.
//
// A Go timer wakes late by up to a millisecond when the process is idle:
// the runtime then waits in epoll with a timeout in whole milliseconds. At
// high rates that never happens (the CPU is busy and timers are checked
// between goroutines), but at a few thousand requests per second it would add
// half a millisecond of slip, on average, to every corrected latency. So on
// Linux a wait of preciseFrom or more sleeps on a timerfd instead, which
// Go's netpoller watches like a socket and which fires within microseconds;
// shorter waits, frequent only at high rates, keep the cheaper Go timer.
type realClock struct {
	origin  time.Time
	timer   *time.Timer // the Go timer, reused across sleeps
	precise *timerfd    // nil where there is none
}

func newRealClock() *realClock {
	t := time.NewTimer(time.Hour)
	t.Stop()
	c := &realClock{origin: time.Now(), timer: t}
	c.precise = newTimerfd(c.origin) // after origin: it measures from it
	return c
}

// watch makes a precise sleep return when ctx is done, as a Go timer sleep
// does through its done channel; it returns the function that stops that.
func (c *realClock) watch(ctx context.Context) (stop func() bool) {
	if c.precise == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, c.precise.interrupt)
}

func (c *realClock) close() {
	if c.precise != nil {
		c.precise.close()
	}
}

func (c *realClock) Now() time.Duration { return time.Since(c.origin) }

func (c *realClock) SleepUntil(done <-chan struct{}, t time.Duration) bool {
	d := t - c.Now()
	if d <= 0 {
		return true
	}
	if d >= preciseFrom && c.precise != nil {
		if c.precise.sleepUntil(t) {
			return true
		}
		// The precise timer failed, or was interrupted: check which.
		select {
		case <-done:
			return false
		default:
		}
		c.precise = nil // broken: fall back to Go timers for good
		return c.SleepUntil(done, t)
	}
	c.timer.Reset(d)
	select {
	case <-c.timer.C:
		return true
	case <-done:
		c.timer.Stop()
		return false
	}
}
