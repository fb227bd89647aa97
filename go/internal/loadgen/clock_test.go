package loadgen

import (
	"context"
	"runtime"
	"sync"
	"testing"
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

// The real clock wakes at or after the intended time, on both its paths
// (timerfd for 50 µs and more, a Go timer below), and a cancelled context
// ends a long sleep at once.
func TestRealClock(t *testing.T) {
	c := newRealClock()
	defer c.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer c.watch(ctx)()
	var late []time.Duration
	for _, d := range []time.Duration{20 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		for range 5 {
			target := c.Now() + d
			if !c.SleepUntil(ctx.Done(), target) {
				t.Fatal("interrupted")
			}
			over := c.Now() - target
			if over < 0 {
				t.Fatalf("woke %v early", -over)
			}
			late = append(late, over)
		}
	}
	t.Logf("overshoots: %v (timerfd: %v)", late, c.precise != nil)

	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	if c.SleepUntil(ctx.Done(), c.Now()+10*time.Second) {
		t.Error("a cancelled sleep reported success")
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the cancelled sleep lasted %v", waited)
	}
}
