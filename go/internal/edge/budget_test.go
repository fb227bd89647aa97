package edge

import (
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBudget(ratio float64, floor int, window time.Duration) (*RetryBudget, *fakeClock) {
	b := NewRetryBudget(ratio, floor, window)
	clock := &fakeClock{t: b.epoch}
	b.now = clock.now
	return b, clock
}

// retries takes retries until refused and returns how many it got.
func retries(b *RetryBudget) int {
	n := 0
	for b.Retry() {
		n++
		if n > 1000 {
			panic("a budget without end")
		}
	}
	return n
}

func TestRetryBudgetFloorAndRatio(t *testing.T) {
	b, _ := newTestBudget(RetryBudgetRatio, RetryBudgetFloor, RetryBudgetWindow)
	if n := retries(b); n != 10 {
		t.Fatalf("without calls: %d retries, want the floor, 10", n)
	}
	for range 50 {
		b.Call()
	}
	if n := retries(b); n != 5 {
		t.Fatalf("after 50 calls: %d more retries, want 10%% of them, 5", n)
	}
	b.Call()
	if b.Retry() {
		t.Fatal("51 calls make room for 5.1 retries, not 6")
	}
}

// The window slides a bucket at a time: what was counted leaves it a window later.
func TestRetryBudgetSlides(t *testing.T) {
	b, clock := newTestBudget(0.5, 0, time.Second)
	for range 10 {
		b.Call()
	}
	clock.advance(500 * time.Millisecond)
	for range 10 {
		b.Call()
	}
	if n := retries(b); n != 10 {
		t.Fatalf("%d retries for 20 calls at 50%%, want 10", n)
	}
	clock.advance(499 * time.Millisecond) // 999 ms after the first calls: all still in the window
	if b.Retry() {
		t.Fatal("a retry before anything left the window")
	}
	clock.advance(time.Millisecond) // the first 10 calls left, and the 10 retries made at 500 ms stay
	if b.Retry() {
		t.Fatal("10 calls and 10 retries in the window, yet room for one more")
	}
	clock.advance(500 * time.Millisecond) // everything left
	for range 4 {
		b.Call()
	}
	if n := retries(b); n != 2 {
		t.Fatalf("%d retries in a fresh window of 4 calls, want 2", n)
	}
	clock.advance(time.Hour) // a long pause forgets everything at once
	if b.Retry() {
		t.Fatal("an empty window with no floor allowed a retry")
	}
}
