package restserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape is GET /metrics.
func scrape(t testing.TB, s *server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric waits until /metrics has line (a call is counted once its answer is written).
func waitMetric(t testing.TB, s *server, line string) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if body = scrape(t, s); slices.Contains(strings.Split(body, "\n"), line) {
			return
		}
	}
	t.Fatalf("no line %q in:\n%s", line, body)
}

func TestDeadline504(t *testing.T) {
	s := startTest(t, testConfig(1000, 1), func(svc *Service) {
		svc.beforeRank = func(context.Context) { time.Sleep(20 * time.Millisecond) } // past a 1 ms deadline
	})
	for _, path := range []string{RecommendPath, StreamPath} {
		resp, body := post(t, s.addr, path, `{"userId": "a", "limit": 10}`, TimeoutHeader, "1")
		wantError(t, resp, body, 504, "deadline_exceeded", TimeoutHeader)
	}
	// A generous deadline is no error.
	if resp, body := post(t, s.addr, RecommendPath, `{"userId": "a", "limit": 10}`, TimeoutHeader, "99999999"); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	waitMetric(t, s, `rpc_requests_total{code="DEADLINE_EXCEEDED",method="Recommend"} 1`)
	waitMetric(t, s, `rpc_requests_total{code="DEADLINE_EXCEEDED",method="StreamRecommendations"} 1`)

	// Without a delay: 1 ms is too short to answer a thousand items of 256 features.
	plain := startTest(t, testConfig(1000, 1), nil)
	resp, body := post(t, plain.addr, RecommendPath, `{"userId": "a", "limit": 1000, "features": 256}`, TimeoutHeader, "1")
	wantError(t, resp, body, 504, "deadline_exceeded", "")

	// Past the deadline in the middle of a stream: the 200 is out, a last line carries the error.
	mid := startTest(t, testConfig(1000, 1), func(svc *Service) {
		svc.beforePage = func(page int) {
			if page == 2 {
				time.Sleep(300 * time.Millisecond)
			}
		}
	})
	resp, body = post(t, mid.addr, StreamPath, `{"userId": "a", "limit": 10}`, TimeoutHeader, "150")
	ls := lines(t, body)
	var e envelope
	if resp.StatusCode != 200 || len(ls) != 3 || json.Unmarshal(ls[2], &e) != nil || e.Error.Code != "deadline_exceeded" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	waitMetric(t, mid, `rpc_requests_total{code="DEADLINE_EXCEEDED",method="StreamRecommendations"} 1`)
}

func TestOverload503(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := testConfig(1000, 1)
	cfg.MaxInFlight = 1
	s := startTest(t, cfg, func(svc *Service) {
		svc.beforePage = func(int) { once.Do(func() { close(started) }); <-release }
	})
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+s.addr+StreamPath, "application/json", strings.NewReader(`{"userId": "a", "limit": 2}`))
		if err != nil {
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	for _, path := range []string{RecommendPath, StreamPath} {
		resp, body := post(t, s.addr, path, `{"userId": "a", "limit": 2}`)
		wantError(t, resp, body, 503, "overloaded", "retry later")
		if resp.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	if resp, err := http.Get("http://" + s.addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz while full: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	waitMetric(t, s, "rpc_in_flight 1")
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the admitted stream: %d", code)
	}
	waitMetric(t, s, `rpc_requests_total{code="UNAVAILABLE",method="Recommend"} 1`)
	waitMetric(t, s, `rpc_requests_total{code="OK",method="StreamRecommendations"} 1`)
}

// Shutdown lets a stream in flight finish; new connections are refused meanwhile.
func TestGracefulShutdown(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := startTest(t, testConfig(1000, 1), func(svc *Service) {
		svc.beforePage = func(page int) {
			if page == 1 {
				once.Do(func() { close(started) })
				<-release
			}
		}
	})
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+s.addr+StreamPath, "application/json", strings.NewReader(`{"userId": "a", "limit": 5}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- s.shutdown() }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			break // refused
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections")
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a stream in flight", err)
	default:
	}
	close(release)
	res := <-done
	if res.err != nil || res.status != 200 || strings.Count(res.body, "\n") != 5 {
		t.Fatalf("the stream in flight: %d %q %v", res.status, res.body, res.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	s.done <- nil // for the cleanup
}

func TestMetricsAndKeepAlive(t *testing.T) {
	s := startTest(t, testConfig(1000, 1), nil)
	reused := 0
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused++
		}
	}}
	for range 3 {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodPost, "http://"+s.addr+RecommendPath, strings.NewReader(`{"userId": "a", "limit": 3}`))
		if resp, body := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if reused != 2 {
		t.Errorf("%d of 3 calls on a reused connection, want 2", reused)
	}
	post(t, s.addr, StreamPath, `{"userId": "a", "limit": 3, "pageSize": 2}`)
	post(t, s.addr, RecommendPath, `{"userId": ""}`)
	post(t, s.addr, RecommendPath, `{`+strings.Repeat(" ", MaxBody)+`}`)
	waitMetric(t, s, `rpc_requests_total{code="OK",method="Recommend"} 3`)
	waitMetric(t, s, `rpc_requests_total{code="OK",method="StreamRecommendations"} 1`)
	waitMetric(t, s, `rpc_requests_total{code="INVALID_ARGUMENT",method="Recommend"} 1`)
	waitMetric(t, s, `rpc_requests_total{code="RESOURCE_EXHAUSTED",method="Recommend"} 1`)
	body := scrape(t, s)
	for _, want := range []string{
		`rpc_requests_total{code="UNAVAILABLE",method="StreamRecommendations"} 0`,
		`rpc_request_duration_seconds_bucket{method="Recommend",le="0.0001"}`,
		`rpc_request_duration_seconds_bucket{method="StreamRecommendations",le="10"}`,
		`rpc_request_duration_seconds_count{method="Recommend"} 5`,
		"rpc_in_flight 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	if strings.Contains(body, `code="NOT_FOUND"`) {
		t.Error("a 404 was counted")
	}
}

func BenchmarkRecommendREST(b *testing.B) {
	s := startTest(b, testConfig(1000, 1), nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	body := `{"userId": "alice", "limit": 10, "features": 16}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post("http://"+s.addr+RecommendPath, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode)
		}
	}
}
