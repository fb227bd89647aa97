package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/grpcserver"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"github.com/patternbench/patternbench/go/internal/rpc/rpctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// The edge in front of go-grpc answers every request byte for byte as go-rest does: the
// ranking vectors over both routes, and the errors a request can earn before the core.
func TestSameAnswersAsGoRest(t *testing.T) {
	cases := rpctest.Cases(t)
	huge := `{"userId": "` + strings.Repeat("u", restserver.MaxBody) + `", "limit": 1}`
	bad := []struct{ body, timeout string }{
		{"garbage", ""}, {"null", ""}, {"[1]", ""}, {`{"userId": "a", "limit": 1, "nope": 1}`, ""},
		{`{"userId": "a", "limit": "ten"}`, ""}, {`{"userId": "a", "limit": 5000}`, ""},
		{`{"userId": "a", "limit": 1, "filters": {"categories": [9]}}`, ""}, {huge, ""},
		{`{"userId": "a", "limit": 1}`, "0"}, {`{"userId": "a", "limit": 1}`, "1.5"},
		{`{"user_id": "alice", "limit": 2, "filters": {"categories": ["CATEGORY_TOOLS", 1]}, "page_size": 0}`, ""},
	}
	for _, table := range rpctest.Tables(cases) {
		cfg := recsvc.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Items: int(table[0]), Seed: table[1], MaxInFlight: 128}
		core, err := grpcserver.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { core.Stop(time.Second) })
		rest, err := restserver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		restAddr := serveHTTP(t, rest)
		edge := startEdge(t, testConfig(core.Addr()), Options{})

		same := func(name, body, timeout string) {
			t.Helper()
			for _, path := range []string{restserver.RecommendPath, restserver.StreamPath} {
				var headers []string
				if timeout != "" {
					headers = []string{restserver.TimeoutHeader, timeout}
				}
				want, wantBody := post(t, restAddr, path, body, headers...)
				got, gotBody := post(t, edge.addr, path, body, headers...)
				if got.StatusCode != want.StatusCode || got.Header.Get("Content-Type") != want.Header.Get("Content-Type") ||
					!bytes.Equal(gotBody, wantBody) {
					t.Fatalf("%s %s: edge %d %s %.200q, go-rest %d %s %.200q", name, path,
						got.StatusCode, got.Header.Get("Content-Type"), gotBody, want.StatusCode, want.Header.Get("Content-Type"), wantBody)
				}
			}
		}
		for _, tc := range cases {
			if uint64(tc.Items) == table[0] && tc.Seed == table[1] {
				body, err := protojson.Marshal(tc.Proto())
				if err != nil {
					t.Fatal(err)
				}
				same(tc.Name, string(body), "")
			}
		}
		for _, b := range bad {
			same(fmt.Sprintf("%.40s", b.body), b.body, b.timeout)
		}
	}
}

func TestRoutingAndMalformedRequests(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	send := func(method, path, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, "http://"+e.addr+path, strings.NewReader(body))
		return do(t, req)
	}
	resp, body := send(http.MethodPost, "/v1/nope", "{}")
	wantError(t, resp, body, 404, "not_found", "")
	resp, body = send(http.MethodGet, restserver.RecommendPath, "")
	wantError(t, resp, body, 405, "method_not_allowed", "POST")
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow: %q", resp.Header.Get("Allow"))
	}
	resp, body = send(http.MethodPost, "/healthz", "")
	wantError(t, resp, body, 405, "method_not_allowed", "GET")
	resp, body = send(http.MethodPost, restserver.RecommendPath, "{not json")
	wantError(t, resp, body, 400, "invalid_argument", "not a RecommendRequest in JSON")
	resp, body = send(http.MethodPost, restserver.StreamPath, `{"userId": "`+strings.Repeat("u", restserver.MaxBody)+`"}`)
	wantError(t, resp, body, 413, "resource_exhausted", "larger than")
	// The scaffold's limits apply: a chunked body is refused.
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+restserver.RecommendPath, io.MultiReader(strings.NewReader(`{}`)))
	req.ContentLength = -1
	resp, body = do(t, req)
	wantError(t, resp, body, 400, "bad_request", "Transfer-Encoding")
	if n := len(core.calls()); n != 0 {
		t.Errorf("the core saw %d calls of malformed requests", n)
	}
	wantMetric(t, e.addr, `edge_requests_total{code="400",route="/v1/recommend"} 1`)
	wantMetric(t, e.addr, `edge_requests_total{code="413",route="/v1/recommend:stream"} 1`)
	if m := scrape(t, e.addr); strings.Contains(m, `code="404"`) || strings.Contains(m, `code="405"`) {
		t.Error("a 404 or 405 was counted")
	}
}

func TestRequestID(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	good := `{"userId": "a", "limit": 1}`
	isMade := func(id string) bool { b, err := hex.DecodeString(id); return err == nil && len(b) == 16 }

	resp, _ := post(t, e.addr, restserver.RecommendPath, good, RequestIDHeader, "req-1:a.b_c")
	calls := core.calls()
	if got := resp.Header.Get(RequestIDHeader); got != "req-1:a.b_c" {
		t.Errorf("echoed %q", got)
	}
	if got := calls[len(calls)-1].md.Get(requestIDKey); len(got) != 1 || got[0] != "req-1:a.b_c" {
		t.Errorf("the core got %q", got)
	}
	for _, sent := range []string{"", "has space", strings.Repeat("x", 129), "é"} {
		var headers []string
		if sent != "" {
			headers = []string{RequestIDHeader, sent}
		}
		resp, _ := post(t, e.addr, restserver.StreamPath, good, headers...)
		calls := core.calls()
		got := resp.Header.Get(RequestIDHeader)
		if !isMade(got) || calls[len(calls)-1].md.Get(requestIDKey)[0] != got {
			t.Errorf("sent %q: echoed %q, the core got %q", sent, got, calls[len(calls)-1].md.Get(requestIDKey))
		}
	}
	// Two made ids differ; errors carry one too, made or echoed.
	a, _ := post(t, e.addr, restserver.RecommendPath, "garbage")
	b, _ := post(t, e.addr, "/nope", "")
	c, _ := post(t, e.addr, restserver.RecommendPath, "garbage", RequestIDHeader, "mine")
	if ida, idb := a.Header.Get(RequestIDHeader), b.Header.Get(RequestIDHeader); !isMade(ida) || !isMade(idb) || ida == idb ||
		c.Header.Get(RequestIDHeader) != "mine" {
		t.Errorf("ids %q %q %q", ida, idb, c.Header.Get(RequestIDHeader))
	}
}

// The core's deadline is the call's: its budget less what the edge spent before calling.
func TestDeadlineSeenByCore(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	post(t, e.addr, restserver.RecommendPath, `{"userId": "warm", "limit": 1}`) // the connections are up
	for _, tc := range []struct {
		header string
		budget time.Duration
	}{{"800", 800 * time.Millisecond}, {"", DefaultBudget}} {
		var headers []string
		if tc.header != "" {
			headers = []string{restserver.TimeoutHeader, tc.header}
		}
		before := time.Now()
		resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`,
			append(headers, RequestIDHeader, "dl-"+tc.header)...)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		seen := core.calls()[len(core.calls())-1]
		if !seen.hasDeadline {
			t.Fatal("the core saw no deadline")
		}
		// Its absolute deadline is the arrival's plus the budget (the clocks are the same).
		if d := seen.deadline.Sub(before.Add(tc.budget)); d < -time.Millisecond || d > 5*time.Millisecond {
			t.Errorf("budget %v: the core's deadline is %v after the client's send + budget", tc.budget, d)
		}
		// What it has left is what the edge had left when it called, less the hop.
		left := seen.deadline.Sub(seen.at)
		var logged map[string]any
		for _, l := range e.logs.lines(t, "request") {
			if l["request_id"] == "dl-"+tc.header {
				logged = l
			}
		}
		deadlineMs, _ := logged["deadline_ms"].(float64)
		if d := millis(left) - deadlineMs; d > 0.05 || d < -1 || deadlineMs > millis(tc.budget) || deadlineMs < millis(tc.budget)-50 {
			t.Errorf("budget %v: the core had %.3f ms left, the edge logged deadline_ms %.3f", tc.budget, millis(left), deadlineMs)
		}
	}
}

// A core slower than the deadline is a 504 at the deadline, over both routes, with or without
// the header.
func TestSlowCore504(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	core.onRecommend(func(ctx context.Context, _ *pb.RecommendRequest) (*pb.RecommendResponse, error) {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return nil, status.Error(codes.DeadlineExceeded, "too slow")
	})
	core.onStream(func(_ *pb.RecommendRequest, st grpc.ServerStreamingServer[pb.RecommendPage]) error {
		select {
		case <-st.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return status.Error(codes.DeadlineExceeded, "too slow")
	})
	cfg := testConfig(core.addr)
	cfg.Budget = 100 * time.Millisecond
	e := startEdge(t, cfg, Options{})
	for _, path := range []string{restserver.RecommendPath, restserver.StreamPath} {
		for _, headers := range [][]string{{restserver.TimeoutHeader, "100"}, nil} {
			start := time.Now()
			resp, body := post(t, e.addr, path, `{"userId": "a", "limit": 1}`, headers...)
			took := time.Since(start)
			wantError(t, resp, body, 504, "deadline_exceeded", "deadline")
			if took < 99*time.Millisecond || took > 250*time.Millisecond {
				t.Errorf("%s %v: answered after %v, budget 100 ms", path, headers, took)
			}
		}
	}
}

// A budget spent at the edge (a body that does not come) is a 504 too, and the core is not
// called.
func TestBudgetSpentAtTheEdge(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: edge\r\nContent-Length: 30\r\n%s: 50\r\n\r\n{", restserver.RecommendPath, restserver.TimeoutHeader)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	wantError(t, resp, body, 504, "deadline_exceeded", "")
	if took := time.Since(start); took > 250*time.Millisecond || len(core.calls()) != 0 {
		t.Errorf("answered after %v; the core saw %d calls", took, len(core.calls()))
	}
}

func TestOverload503(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	started, release := make(chan struct{}), make(chan struct{})
	core.onRecommend(func(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
		close(started)
		<-release
		return &pb.RecommendResponse{UserId: req.GetUserId()}, nil
	})
	cfg := testConfig(core.addr)
	cfg.MaxInFlight = 1
	e := startEdge(t, cfg, Options{})
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+e.addr+restserver.RecommendPath, "application/json", strings.NewReader(`{"userId": "a", "limit": 1}`))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	for _, path := range []string{restserver.RecommendPath, restserver.StreamPath} {
		resp, body := post(t, e.addr, path, `{"userId": "a", "limit": 1}`)
		wantError(t, resp, body, 503, "overloaded", "retry later")
		if resp.Header.Get("Retry-After") != "1" || resp.Header.Get(RequestIDHeader) == "" {
			t.Errorf("Retry-After %q, X-Request-ID %q", resp.Header.Get("Retry-After"), resp.Header.Get(RequestIDHeader))
		}
	}
	wantMetric(t, e.addr, "edge_in_flight 1")
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the admitted call: %d", code)
	}
	wantMetric(t, e.addr, `edge_requests_total{code="503",route="/v1/recommend"} 1`)
}

// A stream may be retried before its first message, not after: then a last line ends it.
func TestStreamFailures(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	var calls atomic.Int32
	core.onStream(func(req *pb.RecommendRequest, st grpc.ServerStreamingServer[pb.RecommendPage]) error {
		if calls.Add(1) == 1 {
			return status.Error(codes.Unavailable, "connection reset")
		}
		for _, p := range recsvc.Pages(core.svc.Items(req), 1)[:2] {
			if err := st.Send(p); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "the core went away")
	})
	e := startEdge(t, testConfig(core.addr), Options{})
	resp, body := post(t, e.addr, restserver.StreamPath, `{"userId": "a", "limit": 5}`, RequestIDHeader, "s1")
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 3 ||
		!strings.Contains(lines[2], `"code":"unavailable"`) || !strings.Contains(lines[2], "the core went away") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the core saw %d calls, want 2 (one retry before the first message, none after)", n)
	}
	wantMetric(t, e.addr, `edge_requests_total{code="503",route="/v1/recommend:stream"} 1`)
	if l := e.logs.lines(t, "request"); len(l) != 1 || l[0]["attempts"] != 2.0 || l[0]["status"] != 503.0 {
		t.Errorf("log %v", l)
	}
}
