package workerpool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/expect"
)

// client has a timeout so that a hang fails the test instead of stalling it.
var client = &http.Client{Timeout: 10 * time.Second}

// startService serves a Service built from cfg with kernel call do (nil:
// Task.Do) on a real listener, and closes both when the test ends.
func startService(t *testing.T, cfg Config, do func(Task) string) (*Service, string) {
	t.Helper()
	if do == nil {
		do = Task.Do
	}
	svc, err := newService(cfg, do)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return svc, srv.URL
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, ctx context.Context, method, url string, body []byte) (reply, error) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return reply{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}, err
}

func mustSend(t *testing.T, method, url string, body []byte) reply {
	t.Helper()
	r, err := send(t, context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decode parses a JSON answer keeping numbers exact (seeds reach 2^64-1).
func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("answer %q has data after the JSON value", b)
	}
	return v
}

// metric reads one series (name plus its label set as printed) from /metrics.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	r := mustSend(t, "GET", base+"/metrics", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// eventually waits up to 5 s for cond, which reads state that goroutines of
// the service update after the answer the test saw.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestVectors(t *testing.T) {
	data, err := os.ReadFile("../../../systems/workerpool/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Params struct {
			Workers   int `json:"workers"`
			Queue     int `json:"queue"`
			TimeoutMs int `json:"timeout_ms"`
		} `json:"params"`
		Cases []struct {
			Name    string `json:"name"`
			Request struct {
				Method string          `json:"method"`
				Path   string          `json:"path"`
				Body   json.RawMessage `json:"body"` // sent as written: 1.5 stays 1.5
			} `json:"request"`
			Expect struct {
				Status int             `json:"status"`
				Body   json.RawMessage `json:"body"`
			} `json:"expect"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	_, base := startService(t, Config{Workers: v.Params.Workers, Queue: v.Params.Queue,
		Timeout: time.Duration(v.Params.TimeoutMs) * time.Millisecond}, nil)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			method := c.Request.Method
			if method == "" {
				method = "GET"
			}
			var body []byte
			if len(c.Request.Body) > 0 {
				body = c.Request.Body
			}
			r := mustSend(t, method, base+c.Request.Path, body)
			if r.status != c.Expect.Status {
				t.Errorf("status %d, want %d (body %s)", r.status, c.Expect.Status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got, want := decode(t, r.body), decode(t, c.Expect.Body); !expect.Match(want, got) {
				t.Errorf("body %s\nwant %s", r.body, c.Expect.Body)
			}
		})
	}
}

// TestInvalid covers the 400s beyond the vectors, each naming its field.
func TestInvalid(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	big := `{"kernel":"spin","rounds":1,"pad":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, c := range []struct {
		method, query, body string
		field               string // the message's first word
	}{
		{"POST", "", `kernel=spin&rounds=1`, "body:"},
		{"POST", "", ``, "body:"},
		{"POST", "", `null`, "body:"},
		{"POST", "", `"spin"`, "body:"},
		{"POST", "", `{"kernel":"spin","rounds":1}{}`, "body:"},
		{"POST", "", `{"kernel":"spin","rounds":1`, "body:"},
		{"POST", "", big, "body:"},
		{"POST", "?rounds=1", `{"kernel":"spin","rounds":1}`, "query:"},
		{"POST", "", `{"kernel":5,"rounds":1}`, "kernel:"},
		{"POST", "", `{"kernel":"SPIN","rounds":1}`, "kernel:"},
		{"POST", "", `{"Kernel":"spin","rounds":1}`, `"Kernel":`},
		{"POST", "", `{"kernel":"spin","rounds":null}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1e3}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1.0}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":[1]}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"seed":18446744073709551616}`, "seed:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"seed":false}`, "seed:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"size":"0"}`, "size:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"size":-8}`, "size:"},
		{"POST", "", `{"kernel":"hash","rounds":1,"size":0}`, "size:"},
		{"GET", "kernel=spin&rounds=1&seed=%2B1", "", "seed:"},
		{"GET", "kernel=spin&rounds=1&seed=", "", "seed:"},
		{"GET", "kernel=spin&rounds=1&seed=0x10", "", "seed:"},
		{"GET", "kernel=spin&rounds=%201", "", "rounds:"},
		{"GET", "kernel=spin&rounds=1&rounds=2", "", "rounds:"},
		{"GET", "kernel=spin&kernel=hash&rounds=1", "", "kernel:"},
		{"GET", "kernel=spin&rounds=1&size=x", "", "size:"},
		{"GET", "kernel=hash&rounds=1&size=0", "", "size:"},
		{"GET", "kernel=hash&rounds=1&size=1048577", "", "size:"},
		{"GET", "kernel=hash&rounds=1025&size=1048576", "", "size:"},
		{"GET", "kernel=spin&rounds=99999999999999999999999", "", "rounds:"},
		{"GET", "kernel=spin&rounds=1&%zz", "", "query:"},
		{"GET", "kernel=spin&rounds=1&=1", "", `"":`},
		// The order is kernel, seed, rounds, size: the first invalid is named.
		{"GET", "kernel=nope&seed=x&rounds=x&size=x", "", "kernel:"},
		{"GET", "kernel=hash&seed=x&rounds=x&size=x", "", "seed:"},
		{"GET", "kernel=hash&rounds=x&size=x", "", "rounds:"},
		{"POST", "", `{"size":"x","rounds":"x","seed":"x","kernel":"hash"}`, "seed:"},
	} {
		url := base + "/work"
		if c.method == "GET" {
			url += "?" + c.query
		} else {
			url += c.query
		}
		var body []byte
		if c.method == "POST" {
			body = []byte(c.body)
		}
		r := mustSend(t, c.method, url, body)
		var env struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(r.body, &env)
		if r.status != 400 || env.Error.Code != "invalid_argument" || !strings.HasPrefix(env.Error.Message, c.field+" ") {
			t.Errorf("%s %s %.80q: %d %.200s, want 400 naming %s", c.method, c.query, c.body, r.status, r.body, c.field)
		}
	}
}

// TestValid covers accepted edge cases beyond the vectors.
func TestValid(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	padded := `{"kernel":"spin","rounds":1}`
	padded += strings.Repeat(" ", MaxBody-len(padded)) // exactly 64 KiB
	for _, c := range []struct {
		method, query, body, want string
	}{
		{"POST", "", padded, `{"kernel":"spin","seed":0,"rounds":1,"size":0,"output":"` + Spin(0, 1) + `"}`},
		{"POST", "", `{"kernel":"spin","seed":18446744073709551615,"rounds":3,"size":12}`,
			`{"kernel":"spin","seed":18446744073709551615,"rounds":3,"size":12,"output":"` + Spin(1<<64-1, 3) + `"}`},
		{"POST", "", `{"kernel":"spin","seed":-0,"rounds":0}`, `{"kernel":"spin","seed":0,"rounds":0,"size":0,"output":"` + Spin(0, 0) + `"}`},
		{"POST", "", `{"rounds":2,"size":1048576,"kernel":"hash"}`,
			`{"kernel":"hash","seed":0,"rounds":2,"size":1048576,"output":"` + Hash(0, 2, 1<<20) + `"}`},
		{"GET", "?kernel=spin&rounds=0010&seed=007", "", `{"kernel":"spin","seed":7,"rounds":10,"size":0,"output":"` + Spin(7, 10) + `"}`},
	} {
		var body []byte
		if c.method == "POST" {
			body = []byte(c.body)
		}
		r := mustSend(t, c.method, base+"/work"+c.query, body)
		if r.status != 200 || string(r.body) != c.want {
			t.Errorf("%s %s %.60q: %d %s\nwant %s", c.method, c.query, c.body, r.status, r.body, c.want)
		}
	}
	// Exactly 1 GiB to hash is allowed; checked without hashing it.
	if q, err := parseQuery("kernel=hash&rounds=1024&size=1048576"); err != nil || q.Rounds*q.Size != MaxHashed {
		t.Errorf("1 GiB: %+v %v", q, err)
	}
}

func TestRouting(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"HEAD", "/work", 405, "", "GET, POST"},
		{"DELETE", "/work?kernel=spin&rounds=1", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"GET", "/work/", 404, "not_found", ""},
		{"GET", "/", 404, "not_found", ""},
	} {
		r := mustSend(t, c.method, base+c.path, nil)
		if r.status != c.status || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.status, c.allow)
		}
		if c.code != "" && !strings.Contains(string(r.body), `"code":"`+c.code+`"`) {
			t.Errorf("%s %s: body %s, want code %s", c.method, c.path, r.body, c.code)
		}
	}
}

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

func spinURL(base string, seed uint64, rounds int) string {
	return fmt.Sprintf("%s/work?kernel=spin&seed=%d&rounds=%d", base, seed, rounds)
}

func spinAnswer(seed uint64, rounds int) string {
	return fmt.Sprintf(`{"kernel":"spin","seed":%d,"rounds":%d,"size":0,"output":"%s"}`, seed, rounds, Spin(seed, rounds))
}

// isOverloaded checks a 503 answer: the envelope and Retry-After: 1.
func isOverloaded(r reply) bool {
	return r.status == 503 && r.header.Get("Retry-After") == "1" &&
		r.header.Get("Content-Type") == "application/json" &&
		strings.Contains(string(r.body), `"code":"overloaded"`)
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

func mustSendNoFatal(t *testing.T, url string) reply {
	r, err := send(t, context.Background(), "GET", url, nil)
	if err != nil {
		t.Error(err)
	}
	return r
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

func TestMetrics(t *testing.T) {
	_, base := startService(t, Config{Workers: 3, Queue: 5, Timeout: time.Second}, nil)
	mustSend(t, "GET", spinURL(base, 1, 1), nil)
	mustSend(t, "POST", base+"/work", []byte(`{"kernel":"hash","rounds":1,"size":8}`))
	mustSend(t, "GET", base+"/work?kernel=x&rounds=1", nil)
	mustSend(t, "GET", base+"/nope", nil)    // not /work: not counted
	mustSend(t, "GET", base+"/healthz", nil) // not counted
	r := mustSend(t, "GET", base+"/metrics", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, name := range []string{
		"workerpool_requests_total", "workerpool_request_duration_seconds",
		"workerpool_task_duration_seconds", "workerpool_in_flight", "workerpool_workers",
	} {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("no %s in /metrics", name)
		}
	}
	for _, b := range DurationBuckets {
		le := strconv.FormatFloat(b, 'g', -1, 64)
		for _, series := range []string{
			`workerpool_request_duration_seconds_bucket{le="` + le + `"}`,
			`workerpool_task_duration_seconds_bucket{kernel="spin",le="` + le + `"}`,
			`workerpool_task_duration_seconds_bucket{kernel="hash",le="` + le + `"}`,
		} {
			if !strings.Contains(text, series+" ") {
				t.Errorf("no bucket %s", series)
			}
		}
	}
	if strings.Count(text, "workerpool_request_duration_seconds_bucket{") != len(DurationBuckets)+1 {
		t.Errorf("request duration has other buckets than the contract's")
	}
	for series, want := range map[string]float64{
		"workerpool_workers":                                    3,
		"workerpool_in_flight":                                  0,
		`workerpool_requests_total{code="200"}`:                 2,
		`workerpool_requests_total{code="400"}`:                 1,
		`workerpool_requests_total{code="404"}`:                 -1, // absent
		"workerpool_request_duration_seconds_count":             3,
		`workerpool_task_duration_seconds_count{kernel="spin"}`: 1,
		`workerpool_task_duration_seconds_count{kernel="hash"}`: 1,
	} {
		if want < 0 {
			if strings.Contains(text, series) {
				t.Errorf("%s present", series)
			}
			continue
		}
		if got := metric(t, base, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{Listen: "127.0.0.1:8080", Workers: DefaultWorkers(), Queue: 64, Timeout: 10 * time.Second}); cfg != want {
		t.Errorf("defaults %+v, want %+v", cfg, want)
	}
	cfg, err = ParseFlags([]string{"--listen", ":9", "--workers", "256", "--queue", "0", "--timeout-ms", "600000"})
	if want := (Config{Listen: ":9", Workers: 256, Queue: 0, Timeout: 10 * time.Minute}); err != nil || cfg != want {
		t.Errorf("got %+v %v, want %+v", cfg, err, want)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--workers", "0"}, "workers"},
		{[]string{"--workers", "257"}, "workers"},
		{[]string{"--workers", "two"}, "workers"},
		{[]string{"--queue", "-1"}, "queue"},
		{[]string{"--queue", "100001"}, "queue"},
		{[]string{"--timeout-ms", "0"}, "timeout-ms"},
		{[]string{"--timeout-ms", "600001"}, "timeout-ms"},
		{[]string{"--timeout-ms", "99999999999999999"}, "timeout-ms"},
		{[]string{"--pool", "threads"}, "pool"},
		{[]string{"extra"}, "extra"},
	} {
		_, err := ParseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming %s", c.args, err, c.flag)
		}
	}
	if _, err := New(Config{Workers: 1, Queue: 0}); err == nil || !strings.Contains(err.Error(), "timeout-ms") {
		t.Errorf("New without a timeout: %v", err)
	}
}

// TestSlowBody: a POST body that has not arrived by the deadline is a 504,
// and a body that did arrive leaves the connection usable for the next
// request (the read deadline is cleared).
func TestSlowBody(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 100 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"kernel":"spin","rounds":1}`
	fmt.Fprintf(conn, "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != spinAnswer(0, 1) {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	time.Sleep(200 * time.Millisecond) // past the first request's read deadline
	fmt.Fprintf(conn, "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body)+1, body[:10])
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || !strings.Contains(string(b), `"code":"deadline_exceeded"`) {
		t.Errorf("body never completed: %d %s, want 504", resp.StatusCode, b)
	}
}
