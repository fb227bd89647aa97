package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// numShards splits the buckets so that requests of different clients rarely share a lock.
const numShards = 64

// sweepEvery is how often the buckets that are full again are dropped.
const sweepEvery = 10 * time.Second

// memoryStore keeps each key's bucket as one number, the time at which it is full again
// ("theoretical arrival time", as in GCRA; a bucket with none is full). With T = 1/RPS, a
// bucket full at f holds burst - (f-now)/T tokens at now, so taking a token moves f by T and
// is allowed while f-now stays within burst·T. The arithmetic is in integer nanoseconds of a
// monotonic clock, so it is exact for T, which is 1/RPS rounded to the nanosecond.
type memoryStore struct {
	interval int64                // T, ns per token
	span     int64                // burst·T: how far ahead of now a bucket may be full
	now      func() time.Duration // monotonic; tests set their own
	seed     maphash.Seed
	shards   [numShards]shard

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

type shard struct {
	mu   sync.Mutex
	full map[string]int64 // key → when its bucket is full again, on now's scale
	_    [48]byte         // a cache line each, not shared with the next shard's lock
}

// newMemoryStore starts the store and its sweeper; now is time since the start when nil.
func newMemoryStore(rps float64, burst int, now func() time.Duration) *memoryStore {
	if now == nil {
		start := time.Now()
		now = func() time.Duration { return time.Since(start) }
	}
	interval := max(1, int64(math.Round(1e9/rps)))
	s := &memoryStore{
		interval: interval,
		span:     int64(burst) * interval,
		now:      now,
		seed:     maphash.MakeSeed(),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].full = make(map[string]int64)
	}
	go s.sweepLoop()
	return s
}

func (s *memoryStore) take(_ context.Context, key string) (bool, time.Duration, error) {
	now := int64(s.now())
	sh := &s.shards[maphash.String(s.seed, key)%numShards]
	sh.mu.Lock()
	full, ok := sh.full[key]
	if !ok || full < now {
		full = now
	}
	next := full + s.interval
	if wait := next - now - s.span; wait > 0 {
		sh.mu.Unlock()
		return false, time.Duration(wait), nil
	}
	sh.full[key] = next
	sh.mu.Unlock()
	return true, 0, nil
}

// sweep drops the buckets that are full again: one is the same as none. It holds one shard's
// lock at a time, so requests wait at most for one shard's scan.
func (s *memoryStore) sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := int64(s.now())
		for key, full := range sh.full {
			if full <= now {
				delete(sh.full, key)
			}
		}
		sh.mu.Unlock()
	}
}

func (s *memoryStore) sweepLoop() {
	defer close(s.stopped)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.sweep()
		}
	}
}

func (s *memoryStore) close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	return nil
}
