package fanout

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend answers every backend call after release is closed, and
// counts the calls it has received and the most it held at once.
type countingBackend struct {
	calls, now, peak atomic.Int64
	release          chan struct{}
}

func startCountingBackend(t *testing.T) (*countingBackend, string) {
	t.Helper()
	b := &countingBackend{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		n := b.now.Add(1)
		for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
		}
		defer b.now.Add(-1)
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
		srv.Close()
	})
	return b, srv.URL
}

// discard is a ResponseWriter that keeps nothing but the status, so that
// AllocsPerRun counts the handler's allocations and not a recorder's.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(s int)           { d.status = s }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

// TestRefusalAllocatesNothingPerBackend: a request refused at admission makes
// no backend call, starts no goroutine and allocates the same whatever the
// number of backends K, i.e. none of the per-request state (a context, K
// parts and reasons, K goroutines, an answer buffer) that an admitted one
// gets. The counters, not timing, say so.
func TestRefusalAllocatesNothingPerBackend(t *testing.T) {
	backend, url := startCountingBackend(t)
	allocs := map[int]float64{}
	for _, k := range []int{1, 8} {
		svc, err := New(Config{Replicas: []string{url}, Fanout: k, CallTimeout: time.Second,
			Deadline: time.Second, MaxInFlight: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		svc.lim.inFlight.Store(4) // every slot taken
		req := httptest.NewRequest(http.MethodGet, "/catalog/sku-1", nil)
		w := &discard{h: http.Header{}}
		goroutines := runtime.NumGoroutine()
		allocs[k] = testing.AllocsPerRun(200, func() {
			clear(w.h)
			svc.ServeHTTP(w, req)
			if w.status != http.StatusServiceUnavailable {
				t.Fatalf("K=%d: status %d, want 503", k, w.status)
			}
		})
		if n := runtime.NumGoroutine(); n > goroutines {
			t.Errorf("K=%d: %d goroutines after 200 refusals, %d before", k, n, goroutines)
		}
		if got := svc.lim.inFlight.Load(); got != 4 {
			t.Errorf("K=%d: in flight %d after refusals, want 4", k, got)
		}
	}
	if n := backend.calls.Load(); n != 0 {
		t.Errorf("refused requests made %d backend calls", n)
	}
	t.Logf("allocations per refusal: %v", allocs)
	if allocs[1] != allocs[8] {
		t.Errorf("a refusal allocates %v times with K=1 and %v with K=8: it allocates per backend", allocs[1], allocs[8])
	}
}

// TestBurstHoldsAtMostTheLimitOfCalls: a burst far past --max-in-flight holds
// at most MaxInFlight×K backend calls (and their goroutines and connections)
// at once; everything past the limit is a 503 with the envelope.
func TestBurstHoldsAtMostTheLimitOfCalls(t *testing.T) {
	backend, url := startCountingBackend(t)
	const limit, k, burst = 3, 2, 40
	_, base := startService(t, Config{Replicas: []string{url}, Fanout: k, CallTimeout: 5 * time.Second,
		Deadline: 5 * time.Second, MaxInFlight: limit})
	statuses := make(chan int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			resp, err := http.Get(base + "/catalog/sku-" + string(rune('a'+i%26)))
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable &&
				(!strings.Contains(string(body), `"code":"overloaded"`) || resp.Header.Get("Retry-After") != "1") {
				t.Errorf("503 without the envelope: %s", body)
			}
			statuses <- resp.StatusCode
		})
	}
	// Every refusal is answered while the admitted requests still wait.
	deadline := time.Now().Add(10 * time.Second)
	for len(statuses) < burst-limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(backend.release)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != limit || count[503] != burst-limit {
		t.Errorf("statuses %v, want %d × 200 and %d × 503", count, limit, burst-limit)
	}
	if p := backend.peak.Load(); p > limit*k {
		t.Errorf("%d backend calls at once, want at most %d", p, limit*k)
	}
}

// TestLimitAdaptsAIMD: late ticks cut the limit by a quarter (not below 1),
// on-time ticks add one (not above --max-in-flight).
func TestLimitAdaptsAIMD(t *testing.T) {
	l := newIdleLimiter(100, 10*time.Millisecond)
	steps := []struct {
		lag  time.Duration
		want int64
	}{
		{0, 100},                     // on time at the maximum: stays
		{10 * time.Millisecond, 75},  // late: × 0.75
		{50 * time.Millisecond, 56},  // late: 56.25
		{time.Millisecond, 57},       // on time: + 1
		{9 * time.Millisecond, 58},   // under the bound is on time
		{200 * time.Millisecond, 43}, // 43.6875
	}
	for i, s := range steps {
		l.observe(s.lag)
		if got := l.limit.Load(); got != s.want {
			t.Fatalf("step %d (lag %v): limit %d, want %d", i, s.lag, got, s.want)
		}
	}
	for range 50 {
		l.observe(time.Second)
	}
	if got := l.limit.Load(); got != 1 {
		t.Errorf("after 50 late ticks the limit is %d, want 1", got)
	}
	for range 500 {
		l.observe(0)
	}
	if got := l.limit.Load(); got != 100 {
		t.Errorf("after 500 ticks on time the limit is %d, want 100", got)
	}
}

// TestNoLagBoundFixesTheLimit: --max-lag-ms 0 starts no ticker and the limit
// stays at --max-in-flight.
func TestNoLagBoundFixesTheLimit(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	l := newLimiter(7, 0)
	if n := runtime.NumGoroutine(); n != goroutines {
		t.Errorf("%d goroutines, %d before: a ticker started", n, goroutines)
	}
	for range 7 {
		if !l.admit() {
			t.Fatal("refused below the limit")
		}
	}
	if l.admit() {
		t.Fatal("admitted past the limit")
	}
	l.release()
	if !l.admit() {
		t.Fatal("refused after a release")
	}
	l.close()
	l.close() // twice is fine
}

// TestLagIsTheSchedulingLatencyQuantile: goroutines kept waiting for the only
// P show up in lag() as at least the wait; an idle interval reads 0.
func TestLagIsTheSchedulingLatencyQuantile(t *testing.T) {
	l := newIdleLimiter(10, 10*time.Millisecond)
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	_ = l.lag() // start a fresh interval
	// 200 goroutines made runnable at once behind one that holds the P 20 ms.
	var ready, wg sync.WaitGroup
	ready.Add(1)
	for range 200 {
		wg.Go(func() { ready.Wait() })
	}
	ready.Done()
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
	}
	wg.Wait()
	if got := l.lag(); got < time.Millisecond {
		t.Errorf("lag %v after goroutines waited ~20 ms for the P, want at least 1 ms", got)
	}
}
