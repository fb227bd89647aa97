package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/rpctest"
	"github.com/patternbench/patternbench/go/internal/serve"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// testCore is a core for the tests: the real ranking behind hooks that may replace a call, the
// standard health service, on 127.0.0.1. It records what each call brought.
type testCore struct {
	pb.UnimplementedRecommendationsServer
	svc    *recsvc.Service
	addr   string
	health *health.Server
	srv    *grpc.Server

	mu        sync.Mutex
	recommend func(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) // nil: rank
	stream    func(req *pb.RecommendRequest, st grpc.ServerStreamingServer[pb.RecommendPage]) error
	seen      []seenCall
}

// seenCall is what the core saw of a call: its metadata, its deadline, when it arrived.
type seenCall struct {
	md          metadata.MD
	deadline    time.Time
	hasDeadline bool
	at          time.Time
}

// startCore serves a testCore on addr ("127.0.0.1:0": any port) until the test ends.
func startCore(t testing.TB, addr string) *testCore {
	t.Helper()
	svc, err := recsvc.New(recsvc.Config{Items: 1000, Seed: 1, MaxInFlight: 128})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCore{svc: svc, addr: lis.Addr().String(), health: health.NewServer(), srv: grpc.NewServer()}
	pb.RegisterRecommendationsServer(c.srv, c)
	healthpb.RegisterHealthServer(c.srv, c.health)
	go func() { _ = c.srv.Serve(lis) }()
	t.Cleanup(c.srv.Stop)
	return c
}

func (c *testCore) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	dl, ok := ctx.Deadline()
	c.mu.Lock()
	c.seen = append(c.seen, seenCall{md: md, deadline: dl, hasDeadline: ok, at: time.Now()})
	c.mu.Unlock()
}

// calls is what the core has seen so far.
func (c *testCore) calls() []seenCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seenCall(nil), c.seen...)
}

// onStream replaces StreamRecommendations (nil: rank and send the pages).
func (c *testCore) onStream(f func(req *pb.RecommendRequest, st grpc.ServerStreamingServer[pb.RecommendPage]) error) {
	c.mu.Lock()
	c.stream = f
	c.mu.Unlock()
}

// onRecommend replaces Recommend (nil: rank).
func (c *testCore) onRecommend(f func(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error)) {
	c.mu.Lock()
	c.recommend = f
	c.mu.Unlock()
}

func (c *testCore) Recommend(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
	c.record(ctx)
	c.mu.Lock()
	f := c.recommend
	c.mu.Unlock()
	if f != nil {
		return f(ctx, req)
	}
	return &pb.RecommendResponse{UserId: req.GetUserId(), Items: c.svc.Items(req)}, nil
}

func (c *testCore) StreamRecommendations(req *pb.RecommendRequest, st grpc.ServerStreamingServer[pb.RecommendPage]) error {
	c.record(st.Context())
	c.mu.Lock()
	f := c.stream
	c.mu.Unlock()
	if f != nil {
		return f(req, st)
	}
	for _, p := range recsvc.Pages(c.svc.Items(req), req.GetPageSize()) {
		if err := st.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// lockedBuffer is the log's destination, read while the edge writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the log's lines with msg, decoded.
func (b *lockedBuffer) lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line that is not JSON: %q", sc.Text())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// testEdge is an edge served on the serve scaffold, as the command serves it.
type testEdge struct {
	*Server
	addr string
	logs *lockedBuffer
}

// testConfig is an edge of core with quick retries.
func testConfig(core string) Config {
	return Config{Listen: "127.0.0.1:0", Core: core, MaxInFlight: 1024, Budget: DefaultBudget,
		Retries: DefaultRetries, RetryBackoff: time.Millisecond, RetryBackoffMax: 5 * time.Millisecond,
		BreakerFailures: DefaultBreakerFailures, BreakerOpen: DefaultBreakerOpen, LogRequests: true,
		Trace: "none", TraceSample: 1}
}

// startEdge serves an edge of cfg on a free port until the test ends; its log is kept.
func startEdge(t testing.TB, cfg Config, opts Options) *testEdge {
	t.Helper()
	logs := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	s, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) }) // after the server has stopped
	return &testEdge{Server: s, addr: serveHTTP(t, s), logs: logs}
}

// serveHTTP serves h on the serve scaffold, on a free port, until the test ends.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, []serve.Endpoint{{Addr: addr, Handler: h}}, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving %s: %v", addr, err)
		}
	})
	waitListening(t, addr)
	return addr
}

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not listening", addr)
		}
	}
}

// The REST helpers the rpc servers' tests share (rpctest).
var (
	post      = rpctest.Post
	do        = rpctest.Do
	wantError = rpctest.WantError
)

type envelope = rpctest.Envelope

// scrape is GET /metrics.
func scrape(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// wantMetric fails unless /metrics has line (a call is counted once its answer is written, so
// it waits a little for it).
func wantMetric(t testing.TB, addr, line string) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		body = scrape(t, addr)
		for l := range strings.SplitSeq(body, "\n") {
			if l == line {
				return
			}
		}
	}
	t.Fatalf("no line %q in:\n%s", line, body)
}

// freeAddr is a 127.0.0.1 address nothing listens on (for now).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
