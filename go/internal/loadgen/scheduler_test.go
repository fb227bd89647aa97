package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeTarget records what the scheduler sends and answers at once (or when
// released), without any network.
type fakeTarget struct {
	mu      sync.Mutex
	draws   []uint64
	release chan struct{} // if not nil, every call waits for it to close
	onCall  func(n int)   // called with the number of calls so far
}

func (f *fakeTarget) session(int) session { return f }
func (f *fakeTarget) close()              {}

func (f *fakeTarget) do(_ context.Context, draw uint64, _ *msgLog) string {
	f.mu.Lock()
	f.draws = append(f.draws, draw)
	n := len(f.draws)
	f.mu.Unlock()
	if f.onCall != nil {
		f.onCall(n)
	}
	if f.release != nil {
		<-f.release
	}
	return ""
}

func (f *fakeTarget) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.draws)
}

func testConfig(t *testing.T, url string, rate float64, d time.Duration) *Config {
	t.Helper()
	cfg := &Config{URL: url, Rate: rate, Duration: d, Arrival: ArrivalConstant, Seed: 1,
		MaxInFlight: 4096, Timeout: time.Second, Method: "GET", GRPCConns: 1, HTTPClient: HTTPClientRaw}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// With a clock that is never late, every request leaves exactly at its
// intended time: the schedule has rate×(warm-up + duration) requests, the
// window counts rate×duration of them, and no slip is recorded.
func TestScheduleOnTime(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/", 1000, 2*time.Second)
	cfg.Warmup = 500 * time.Millisecond
	clock := &mockClock{}
	tgt := &fakeTarget{}
	st, tot := clock.run(context.Background(), cfg, tgt)

	if got := tgt.calls(); got != 2500 {
		t.Errorf("%d requests sent, want 2500", got)
	}
	if tot.requests != 2000 || tot.sentInTime != 2000 || tot.errors != 0 {
		t.Errorf("recorded %d requests (%d in time, %d errors), want 2000", tot.requests, tot.sentInTime, tot.errors)
	}
	if st.interrupted || st.capHit || st.window != 2*time.Second {
		t.Errorf("stats %+v", st)
	}
	if tot.slip.Max() != 0 || tot.corrected.Max() != 0 || tot.slip.TotalCount() != 2000 {
		t.Errorf("slip max %d µs, corrected max %d µs, count %d", tot.slip.Max(), tot.corrected.Max(), tot.slip.TotalCount())
	}
	// One sleep per request after the first, and one to the end of the window.
	if got := clock.Sleeps(); got != 2500 {
		t.Errorf("%d sleeps, want 2500", got)
	}
	if got := clock.Now(); got != 2500*time.Millisecond {
		t.Errorf("the schedule ended at %v, want 2.5s", got)
	}
}

// A scheduler that wakes up late sends everything already due in one batch,
// without sleeping in between, and those requests show the delay as slip.
func TestScheduleBatchesWhenLate(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/", 1000, time.Second)
	clock := &mockClock{}
	clock.Advance(100 * time.Millisecond) // the run starts 100 ms late
	tgt := &fakeTarget{}
	_, tot := clock.run(context.Background(), cfg, tgt)

	if tot.requests != 1000 {
		t.Errorf("%d requests, want 1000", tot.requests)
	}
	// Requests 0..100 were due at once; 101..999 and the window end sleep.
	if got := clock.Sleeps(); got != 900 {
		t.Errorf("%d sleeps, want 900", got)
	}
	// The first request slipped by the whole 100 ms.
	if got := tot.slip.Max(); got < 99_900 || got > 100_100 {
		t.Errorf("max slip %d µs, want 100 ms", got)
	}
}

// When MaxInFlight requests are outstanding the scheduler waits for one to
// finish, says so, and still sends every request of the schedule.
func TestScheduleInFlightCap(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/", 100, 100*time.Millisecond)
	cfg.MaxInFlight = 2
	clock := &mockClock{}
	release := make(chan struct{})
	var once sync.Once
	tgt := &fakeTarget{release: release, onCall: func(n int) {
		if n == 2 { // both slots taken: let the scheduler hit the cap first
			go func() {
				time.Sleep(20 * time.Millisecond)
				once.Do(func() { close(release) })
			}()
		}
	}}
	// No waiting for idleness here: the blocked requests never finish
	// until the scheduler has hit the cap.
	st, tot := newEngine(cfg, clock, tgt, func() time.Duration { return 0 }).run(context.Background())
	if !st.capHit {
		t.Error("the in-flight cap was not reported")
	}
	if tot.requests != 10 || tgt.calls() != 10 {
		t.Errorf("%d requests recorded, %d sent, want 10", tot.requests, tgt.calls())
	}
}

// Cancelling the context stops the schedule; what was measured until then
// is kept, and the window ends at the interrupt.
func TestScheduleInterrupt(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/", 1000, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &mockClock{alarmAt: 50 * time.Millisecond, alarm: cancel}
	tgt := &fakeTarget{}
	st, tot := clock.run(ctx, cfg, tgt)
	if !st.interrupted || st.window != 50*time.Millisecond {
		t.Errorf("interrupted %v, window %v, want true, 50ms", st.interrupted, st.window)
	}
	if tot.requests != 50 || tgt.calls() != 50 {
		t.Errorf("%d requests recorded, %d sent, want 50 (0 to 49 ms)", tot.requests, tgt.calls())
	}

	// Interrupted during the warm-up: an empty window.
	cfg.Warmup = time.Second
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	tgt2 := &fakeTarget{}
	st, tot = (&mockClock{alarmAt: 300 * time.Millisecond, alarm: cancel2}).run(ctx2, cfg, tgt2)
	if !st.interrupted || st.window != 0 || tot.requests != 0 || tgt2.calls() != 300 {
		t.Errorf("interrupted in warm-up: %+v, %d requests, %d sent", st, tot.requests, tgt2.calls())
	}
}

// The {rand:N} draws are uniform in [0, N) and fixed by the seed.
func TestScheduleDraws(t *testing.T) {
	draws := func(seed uint64) []uint64 {
		cfg := testConfig(t, "http://127.0.0.1:1/sku-{rand:10}", 10000, time.Second)
		cfg.Seed = seed
		tgt := &fakeTarget{}
		newEngine(cfg, &mockClock{}, tgt, func() time.Duration { return 0 }).run(context.Background())
		return tgt.draws
	}
	a := draws(1)
	counts := make([]int, 10)
	for _, d := range a {
		if d >= 10 {
			t.Fatalf("draw %d out of [0, 10)", d)
		}
		counts[d]++
	}
	for v, c := range counts { // binomial(10000, 0.1): sd 30
		if c < 850 || c > 1150 {
			t.Errorf("value %d drawn %d times of 10000", v, c)
		}
	}
	// Workers run concurrently, so compare the multisets.
	if b := draws(1); histogramOf(b) != histogramOf(a) {
		t.Error("the same seed gave different draws")
	}
	if c := draws(2); histogramOf(c) == histogramOf(a) {
		t.Error("seeds 1 and 2 gave the same draws")
	}
}

func histogramOf(ds []uint64) [10]int {
	var h [10]int
	for _, d := range ds {
		h[d]++
	}
	return h
}
