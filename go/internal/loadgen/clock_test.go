package loadgen

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// mockClock is a fake Clock whose time moves only when someone sleeps or
// calls Advance: a sleep jumps straight to its wake-up time, as trio's
// MockClock does with an autojump threshold of zero. It runs a schedule of
// any length instantly and deterministically.
type mockClock struct {
	mu     sync.Mutex
	now    time.Duration
	sleeps int // SleepUntil calls that had to move the time

	// alarm, if set, runs once when a sleep reaches alarmAt, before the
	// sleeper checks whether it was cancelled.
	alarmAt time.Duration
	alarm   func()

	// idle, if set, tells whether the rest of the program is blocked; a
	// sleep waits for it before moving the time, so that nothing that was
	// due before the jump sees the time after it.
	idle func() bool
}

func (c *mockClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the time forward by d, as if d had been spent working.
func (c *mockClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
}

func (c *mockClock) SleepUntil(done <-chan struct{}, t time.Duration) bool {
	select {
	case <-done:
		return false
	default:
	}
	if c.idle != nil {
		for !c.idle() {
			runtime.Gosched()
		}
	}
	c.mu.Lock()
	if t > c.now {
		c.now = t
		c.sleeps++
	}
	var alarm func()
	if c.alarm != nil && c.now >= c.alarmAt {
		alarm, c.alarm = c.alarm, nil
	}
	c.mu.Unlock()
	if alarm != nil {
		alarm()
		select {
		case <-done:
			return false
		default:
		}
	}
	return true
}

// run runs the schedule of cfg against tgt on clock, moving the time only
// when every dispatched request has been recorded.
func (c *mockClock) run(ctx context.Context, cfg *Config, tgt target) (schedStats, totals) {
	e := newEngine(cfg, c, tgt, func() time.Duration { return 0 })
	c.idle = func() bool { return e.busy() == 0 }
	return e.run(ctx)
}

func (c *mockClock) Sleeps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleeps
}
