package workerpool

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate is a kernel call that holds every task until release is closed, then
// runs the real kernel: tests decide when work finishes instead of guessing
// how long it takes.
type gate struct {
	release    chan struct{}
	once       sync.Once
	calls      atomic.Int64
	running    atomic.Int64
	maxRunning atomic.Int64
}

func newGate(t *testing.T) *gate {
	g := &gate{release: make(chan struct{})}
	t.Cleanup(g.open) // never leave a worker blocked
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) do(t Task) string {
	g.calls.Add(1)
	n := g.running.Add(1)
	for m := g.maxRunning.Load(); n > m && !g.maxRunning.CompareAndSwap(m, n); m = g.maxRunning.Load() {
	}
	<-g.release
	g.running.Add(-1)
	return t.Do()
}

// TestBurstHeld: workers=1, queue=2 and 50 concurrent requests whose kernels
// are held: exactly 3 are admitted and the other 47 are refused at once with
// 503; while the slots are full a bad request still gets its 400; once the
// kernels finish the 3 get their correct outputs and the service is idle and
// answers again.
func TestBurstHeld(t *testing.T) {
	g := newGate(t)
	svc, base := startService(t, Config{Workers: 1, Queue: 2, Timeout: 10 * time.Second}, g.do)
	const n = 50
	type result struct {
		seed uint64
		r    reply
		err  error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			seed := uint64(1000 + i)
			r, err := send(t, context.Background(), "GET", spinURL(base, seed, 5000), nil)
			results <- result{seed, r, err}
		}()
	}
	for range n - 3 {
		res := <-results // the refusals come without any kernel finishing
		if res.err != nil || !isOverloaded(res.r) {
			t.Fatalf("while 3 tasks are held: %v %d %s %v", res.err, res.r.status, res.r.body, res.r.header)
		}
	}
	if got := svc.admitted.Load(); got != 3 {
		t.Errorf("admitted = %d, want 3", got)
	}
	if got := metric(t, base, "workerpool_in_flight"); got != 3 {
		t.Errorf("workerpool_in_flight = %v, want 3", got)
	}
	eventually(t, "one kernel running", func() bool { return g.running.Load() == 1 })
	if r := mustSend(t, "GET", base+"/work?kernel=spin", nil); r.status != 400 {
		t.Errorf("invalid request while full: %d, want 400 (validation comes first)", r.status)
	}
	if r := mustSend(t, "GET", spinURL(base, 1, 1), nil); !isOverloaded(r) {
		t.Errorf("valid request while full: %d, want 503", r.status)
	}

	g.open()
	for range 3 {
		res := <-results
		if res.err != nil || res.r.status != 200 || string(res.r.body) != spinAnswer(res.seed, 5000) {
			t.Errorf("admitted request: %v %d %s, want %s", res.err, res.r.status, res.r.body, spinAnswer(res.seed, 5000))
		}
	}
	if got := g.maxRunning.Load(); got != 1 {
		t.Errorf("%d kernels ran at once with 1 worker", got)
	}
	if got := g.calls.Load(); got != 3 {
		t.Errorf("%d kernels ran, want 3", got)
	}
	eventually(t, "idle", func() bool { return svc.admitted.Load() == 0 })
	if r := mustSend(t, "GET", spinURL(base, 5, 7), nil); r.status != 200 || string(r.body) != spinAnswer(5, 7) {
		t.Errorf("after the burst: %d %s", r.status, r.body)
	}
	for code, want := range map[string]float64{"200": 4, "400": 1, "503": 48} {
		if got := metric(t, base, `workerpool_requests_total{code="`+code+`"}`); got != want {
			t.Errorf("workerpool_requests_total{code=%s} = %v, want %v", code, got, want)
		}
	}
}

// TestBurstReal: the same bound with the real kernel and no control over
// timing. Every answer is a correct 200 or a 503; no more than workers
// kernels ever run at once and no more than workers+queue tasks are ever
// admitted (checked at every kernel start); nothing hangs.
func TestBurstReal(t *testing.T) {
	var svc *Service
	var running, over atomic.Int64
	var mu sync.Mutex
	do := func(t Task) string {
		if running.Add(1) > 1 {
			over.Add(1)
		}
		mu.Lock()
		if svc != nil && svc.admitted.Load() > 3 {
			over.Add(1)
		}
		mu.Unlock()
		defer running.Add(-1)
		return t.Do()
	}
	s, base := startService(t, Config{Workers: 1, Queue: 2, Timeout: 10 * time.Second}, do)
	mu.Lock()
	svc = s
	mu.Unlock()
	const n, rounds = 50, 2_000_000
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range n {
		wg.Go(func() {
			seed := uint64(i)
			r, err := send(t, context.Background(), "POST", base+"/work",
				fmt.Appendf(nil, `{"kernel":"spin","seed":%d,"rounds":%d}`, seed, rounds))
			switch {
			case err != nil:
				t.Errorf("request %d: %v", i, err)
			case r.status == 200:
				ok.Add(1)
				if string(r.body) != spinAnswer(seed, rounds) {
					t.Errorf("request %d: %s, want %s", i, r.body, spinAnswer(seed, rounds))
				}
			case isOverloaded(r):
				refused.Add(1)
			default:
				t.Errorf("request %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Errorf("the bounds were passed %d times", over.Load())
	}
	if ok.Load() < 3 || ok.Load()+refused.Load() != n {
		t.Errorf("%d answered, %d refused of %d", ok.Load(), refused.Load(), n)
	}
	eventually(t, "idle", func() bool { return s.admitted.Load() == 0 })
	if r := mustSend(t, "GET", spinURL(base, 9, 9), nil); r.status != 200 || string(r.body) != spinAnswer(9, 9) {
		t.Errorf("after the burst: %d %s", r.status, r.body)
	}
	if got := metric(t, base, `workerpool_task_duration_seconds_count{kernel="spin"}`); got != float64(ok.Load()+1) {
		t.Errorf("task duration count = %v, want %d", got, ok.Load()+1)
	}
}

// TestSequentialNeverRefused: with one worker and no queue, a client that
// sends its next request only after its answer is never refused, because the
// slot is released before the answer is handed over.
func TestSequentialNeverRefused(t *testing.T) {
	svc, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	for i := range 30 {
		if r := mustSend(t, "GET", spinURL(base, uint64(i), 100), nil); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if n := svc.admitted.Load(); n != 0 { // released before the answer left
			t.Fatalf("request %d answered with its slot still taken", i)
		}
	}
}

// TestDeadline: A's kernel is held past timeout-ms, B waits behind it. Both
// get 504; both still hold their slots until the work is over (a third
// request is refused); then A's kernel finishes (output discarded) and B is
// dropped without running.
func TestDeadline(t *testing.T) {
	g := newGate(t)
	svc, base := startService(t, Config{Workers: 1, Queue: 1, Timeout: 100 * time.Millisecond}, g.do)
	answers := make(chan reply, 2)
	go func() { answers <- mustSendNoFatal(t, spinURL(base, 1, 10)) }()
	eventually(t, "A running", func() bool { return g.calls.Load() == 1 })
	go func() { answers <- mustSendNoFatal(t, spinURL(base, 2, 10)) }()
	for range 2 {
		r := <-answers
		if r.status != 504 || !strings.Contains(string(r.body), `"code":"deadline_exceeded"`) {
			t.Errorf("got %d %s, want 504 deadline_exceeded", r.status, r.body)
		}
	}
	if got := svc.admitted.Load(); got != 2 {
		t.Errorf("admitted after both 504s = %d, want 2 (slots last until the work is over)", got)
	}
	if r := mustSend(t, "GET", spinURL(base, 3, 10), nil); !isOverloaded(r) {
		t.Errorf("third request: %d %s, want 503", r.status, r.body)
	}

	g.open()
	eventually(t, "idle", func() bool { return svc.admitted.Load() == 0 })
	if got := svc.dropped.Load(); got != 1 {
		t.Errorf("dropped = %d, want 1", got)
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("%d kernels ran, want 1: the queued task must not run", got)
	}
	if got := metric(t, base, `workerpool_task_duration_seconds_count{kernel="spin"}`); got != 1 {
		t.Errorf("task duration count = %v, want 1", got)
	}
	if got := metric(t, base, `workerpool_requests_total{code="504"}`); got != 2 {
		t.Errorf("504s counted = %v, want 2", got)
	}
	if r := mustSend(t, "GET", spinURL(base, 4, 10), nil); r.status != 200 || string(r.body) != spinAnswer(4, 10) {
		t.Errorf("after: %d %s", r.status, r.body)
	}
}

// TestClientGone: a client that goes away while its task is queued is treated
// as a deadline: the task is dropped and never runs.
func TestClientGone(t *testing.T) {
	g := newGate(t)
	svc, base := startService(t, Config{Workers: 1, Queue: 1, Timeout: time.Minute}, g.do)
	first := make(chan reply, 1)
	go func() { first <- mustSendNoFatal(t, spinURL(base, 1, 10)) }()
	eventually(t, "A running", func() bool { return g.calls.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := send(t, ctx, "GET", spinURL(base, 2, 10), nil)
		gone <- err
	}()
	eventually(t, "B queued", func() bool { return svc.admitted.Load() == 2 })
	cancel()
	if err := <-gone; err == nil {
		t.Error("cancelled request succeeded")
	}
	eventually(t, "B's handler done", func() bool {
		return metric(t, base, `workerpool_requests_total{code="504"}`) == 1
	})
	g.open()
	if r := <-first; r.status != 200 || string(r.body) != spinAnswer(1, 10) {
		t.Errorf("A: %d %s", r.status, r.body)
	}
	eventually(t, "idle", func() bool { return svc.admitted.Load() == 0 })
	if svc.dropped.Load() != 1 || g.calls.Load() != 1 {
		t.Errorf("dropped %d, ran %d; want 1 dropped, 1 ran", svc.dropped.Load(), g.calls.Load())
	}
}

// TestClose: Close stops the workers after the running kernel and releases
// what was queued; a handler still waiting answers 503.
func TestClose(t *testing.T) {
	g := newGate(t)
	svc, base := startService(t, Config{Workers: 1, Queue: 1, Timeout: time.Minute}, g.do)
	answers := make(chan reply, 2)
	go func() { answers <- mustSendNoFatal(t, spinURL(base, 1, 10)) }()
	eventually(t, "A running", func() bool { return g.calls.Load() == 1 })
	go func() { answers <- mustSendNoFatal(t, spinURL(base, 2, 10)) }()
	eventually(t, "B queued", func() bool { return svc.admitted.Load() == 2 })
	closed := make(chan struct{})
	go func() { svc.Close(); close(closed) }()
	for range 2 { // both handlers stop waiting, A's kernel still held
		if r := <-answers; !isOverloaded(r) {
			t.Errorf("waiting during Close: %d %s, want 503", r.status, r.body)
		}
	}
	g.open()
	<-closed
	if svc.admitted.Load() != 0 || g.calls.Load() != 1 {
		t.Errorf("after Close: admitted %d, ran %d", svc.admitted.Load(), g.calls.Load())
	}
	svc.Close() // twice is fine
}
