package fanout

import (
	"math"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Admission of catalog requests (systems/fanout/README.md, "Overload"): at
// most limit in progress, limit between 1 and --max-in-flight. The limit
// adapts to how long runnable goroutines wait for a CPU, as TCP's congestion
// window adapts to loss: additive increase, multiplicative decrease (AIMD).
// Every lagInterval the limiter reads the runtime's histogram of scheduling
// latencies; when lagQuantile of the goroutines that became runnable since
// the last tick waited --max-lag-ms or more to run, the CPU is saturated and
// the limit shrinks by a quarter, otherwise it grows by one. Under a load the
// service keeps up with, the limit stays at --max-in-flight; past its
// capacity it settles where goroutines wait about --max-lag-ms, so that the
// refusals, which cost a few microseconds, keep being answered at once. (The
// Python implementation adapts its limit the same way to its event loop's
// lag.)
const (
	lagInterval = 10 * time.Millisecond
	lagQuantile = 0.99
	decrease    = 0.75
	schedMetric = "/sched/latencies:seconds"
)

// limiter is the admission count and its adaptive limit.
type limiter struct {
	max      int64
	maxLag   time.Duration // 0: the limit stays at max
	inFlight atomic.Int64
	limit    atomic.Int64

	// Owned by the ticker goroutine.
	value   float64
	sample  []rtmetrics.Sample
	prev    []uint64
	stop    chan struct{}
	once    sync.Once
	stopped sync.WaitGroup
}

// newLimiter starts the ticker that adapts the limit, unless maxLag is 0.
func newLimiter(maxInFlight int, maxLag time.Duration) *limiter {
	l := newIdleLimiter(maxInFlight, maxLag)
	if maxLag > 0 {
		l.stopped.Go(l.run)
	}
	return l
}

// newIdleLimiter is a limiter at maxInFlight whose ticker is not started.
func newIdleLimiter(maxInFlight int, maxLag time.Duration) *limiter {
	l := &limiter{max: int64(maxInFlight), maxLag: maxLag, value: float64(maxInFlight), stop: make(chan struct{})}
	l.limit.Store(l.max)
	l.sample = []rtmetrics.Sample{{Name: schedMetric}}
	rtmetrics.Read(l.sample)
	l.prev = append([]uint64(nil), l.sample[0].Value.Float64Histogram().Counts...)
	return l
}

// admit takes a slot if fewer than limit requests are in progress. It
// compares before it increments, so the count (and the fanout_in_flight gauge
// read from it) never passes the limit, and a refusal allocates nothing.
func (l *limiter) admit() bool {
	limit := l.limit.Load()
	for {
		n := l.inFlight.Load()
		if n >= limit {
			return false
		}
		if l.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) release() { l.inFlight.Add(-1) }

func (l *limiter) run() {
	t := time.NewTicker(lagInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.observe(l.lag())
		}
	}
}

// lag is the lagQuantile of the scheduling latencies recorded since the last
// call: the lower bound of the histogram bucket it lies in (0 when no
// goroutine became runnable).
func (l *limiter) lag() time.Duration {
	rtmetrics.Read(l.sample)
	h := l.sample[0].Value.Float64Histogram()
	var total uint64
	for i, c := range h.Counts {
		total += c - l.prev[i]
	}
	want := uint64(float64(total)*lagQuantile + 0.5)
	var seen uint64
	lag := 0.0
	for i, c := range h.Counts {
		seen += c - l.prev[i]
		if total > 0 && seen >= want {
			lag = h.Buckets[i]
			break
		}
	}
	copy(l.prev, h.Counts)
	if lag <= 0 || math.IsInf(lag, 0) { // the first bucket's bound is -Inf
		return 0
	}
	return time.Duration(lag * float64(time.Second))
}

// observe adapts the limit to one tick's scheduling latency.
func (l *limiter) observe(lag time.Duration) {
	if lag >= l.maxLag {
		l.value = max(1, l.value*decrease)
	} else {
		l.value = min(float64(l.max), l.value+1)
	}
	l.limit.Store(int64(l.value))
}

// close stops the ticker; safe to call more than once.
func (l *limiter) close() {
	l.once.Do(func() { close(l.stop) })
	l.stopped.Wait()
}
