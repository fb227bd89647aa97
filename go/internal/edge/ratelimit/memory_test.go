package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a monotonic clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Duration      { return time.Duration(c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newFakeStore(t *testing.T, rps float64, burst int) (*memoryStore, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	clock.advance(time.Hour) // not at 0, where an unset bucket would look the same
	s := newMemoryStore(rps, burst, clock.now)
	t.Cleanup(func() { s.close() })
	return s, clock
}

// expect takes a token and checks the answer.
func expect(t *testing.T, s *memoryStore, key string, ok bool, retry time.Duration) {
	t.Helper()
	gotOK, gotRetry, err := s.take(context.Background(), key)
	if err != nil || gotOK != ok || gotRetry != retry {
		t.Fatalf("take(%q) = %v, %v, %v; want %v, %v", key, gotOK, gotRetry, err, ok, retry)
	}
}

func (s *memoryStore) size() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].full)
		s.shards[i].mu.Unlock()
	}
	return n
}

func TestMemoryBurstThenRefusal(t *testing.T) {
	s, _ := newFakeStore(t, 10, 5)
	for range 5 {
		expect(t, s, "alice", true, 0)
	}
	expect(t, s, "alice", false, 100*time.Millisecond)
	expect(t, s, "alice", false, 100*time.Millisecond) // a refusal spends nothing
	expect(t, s, "bob", true, 0)                       // a bucket per key
}

func TestMemoryRefill(t *testing.T) {
	s, clock := newFakeStore(t, 10, 5)
	for range 5 {
		expect(t, s, "alice", true, 0)
	}
	clock.advance(99 * time.Millisecond)
	expect(t, s, "alice", false, time.Millisecond) // RetryAfter: until the next token, exactly
	clock.advance(time.Millisecond)
	expect(t, s, "alice", true, 0)
	expect(t, s, "alice", false, 100*time.Millisecond)

	clock.advance(time.Hour) // refills to the burst, no further
	for range 5 {
		expect(t, s, "alice", true, 0)
	}
	expect(t, s, "alice", false, 100*time.Millisecond)
}

// TestMemoryRate runs 10 s of the fake clock at a call every millisecond: the burst plus the
// refill rate's worth get through.
func TestMemoryRate(t *testing.T) {
	s, clock := newFakeStore(t, 250, 20)
	allowed := 0
	for range 10_000 {
		if ok, retry, _ := s.take(context.Background(), "k"); ok {
			allowed++
		} else if retry <= 0 || retry > 4*time.Millisecond {
			t.Fatalf("RetryAfter %v, want (0, 4ms]", retry)
		}
		clock.advance(time.Millisecond)
	}
	// 20 at once, then one each 4 ms of the 9.999 s that follow.
	if want := 20 + 2499; allowed != want {
		t.Fatalf("allowed %d, want %d", allowed, want)
	}
}

func TestMemoryFractionalRate(t *testing.T) {
	s, clock := newFakeStore(t, 0.5, 1)
	expect(t, s, "k", true, 0)
	expect(t, s, "k", false, 2*time.Second)
	clock.advance(1500 * time.Millisecond)
	expect(t, s, "k", false, 500*time.Millisecond)
}

func TestMemorySweep(t *testing.T) {
	s, clock := newFakeStore(t, 10, 5)
	for i := range 100 {
		expect(t, s, fmt.Sprint("client-", i), true, 0)
	}
	expect(t, s, "busy", true, 0)
	expect(t, s, "busy", true, 0)
	clock.advance(100 * time.Millisecond) // the 100 are full again, busy lacks one token
	s.sweep()
	if n := s.size(); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1 (busy)", n)
	}
	expect(t, s, "busy", true, 0)
	clock.advance(200 * time.Millisecond)
	s.sweep()
	if n := s.size(); n != 0 {
		t.Fatalf("%d buckets after the second sweep, want 0", n)
	}
	for range 5 { // a dropped bucket comes back full
		expect(t, s, "busy", true, 0)
	}
	expect(t, s, "busy", false, 100*time.Millisecond)
}

// TestMemoryConcurrent hammers a few keys from many goroutines (for -race) with the real clock:
// at 1 token a second no key gets more than its burst and the refill of the test's duration.
func TestMemoryConcurrent(t *testing.T) {
	const burst, keys = 50, 4
	l, err := New(Config{RPS: 1, Burst: burst, Store: StoreMemory}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % keys
				if l.Allow(context.Background(), fmt.Sprint("key-", k)).Allowed {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	limit := burst + int64(time.Since(start).Seconds()) + 1
	for k := range allowed {
		if n := allowed[k].Load(); n < burst || n > limit {
			t.Errorf("key-%d: %d allowed, want %d to %d", k, n, burst, limit)
		}
	}
}

func TestMemoryCloseStopsSweeper(t *testing.T) {
	s := newMemoryStore(1, 1, nil)
	done := make(chan struct{})
	go func() { s.close(); s.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
}
