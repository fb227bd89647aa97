package grpcserver

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// scrape is GET path of the metrics server: status and body.
func scrape(t testing.TB, r *Running, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.MetricsAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitMetric waits until /metrics has line (a call is counted as it ends, after its client has
// its answer).
func waitMetric(t testing.TB, r *Running, line string) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, body = scrape(t, r, "/metrics"); slices.Contains(strings.Split(body, "\n"), line) {
			return
		}
	}
	t.Fatalf("no line %q in:\n%s", line, body)
}

func TestMetricsHealthAndReflection(t *testing.T) {
	r := newTest(t, testConfig(1000, 1), nil)
	conn := dial(t, r.Addr())
	c := pb.NewRecommendationsClient(conn)
	ctx := context.Background()
	if _, err := c.Recommend(ctx, &pb.RecommendRequest{UserId: "a", Limit: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := streamAll(ctx, c, &pb.RecommendRequest{UserId: "a", Limit: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Recommend(ctx, &pb.RecommendRequest{UserId: "a"})
	wantCode(t, "limit 0", err, codes.InvalidArgument, "limit")
	wantCode(t, "over 1 MiB", rawCall(t, conn, fullRecommend, make([]byte, MaxRecvBytes+1)), codes.ResourceExhausted, "")

	waitMetric(t, r, `rpc_requests_total{code="OK",method="Recommend"} 1`)
	waitMetric(t, r, `rpc_requests_total{code="OK",method="StreamRecommendations"} 1`)
	waitMetric(t, r, `rpc_requests_total{code="INVALID_ARGUMENT",method="Recommend"} 1`)
	waitMetric(t, r, `rpc_requests_total{code="RESOURCE_EXHAUSTED",method="Recommend"} 1`)
	_, body := scrape(t, r, "/metrics")
	for _, want := range []string{
		`rpc_requests_total{code="UNAVAILABLE",method="StreamRecommendations"} 0`,
		`rpc_request_duration_seconds_bucket{method="Recommend",le="0.0001"}`,
		`rpc_request_duration_seconds_bucket{method="StreamRecommendations",le="10"}`,
		`rpc_request_duration_seconds_count{method="Recommend"} 3`,
		"rpc_in_flight 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	if code, body := scrape(t, r, "/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, _ := scrape(t, r, "/nope"); code != 404 {
		t.Errorf("/nope: %d", code)
	}

	h := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", ServiceName} {
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v, %v", svc, resp, err)
		}
	}
	_, err = h.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	wantCode(t, "health of an unknown service", err, codes.NotFound, "")

	st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{ServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, not %s", names, want)
		}
	}
	_ = st.CloseSend()
}

// Beyond --max-in-flight a call is refused UNAVAILABLE at once; health checks still answer.
func TestOverloadRefusesAtOnce(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg := testConfig(1000, 1)
	cfg.MaxInFlight = 1
	r := newTest(t, cfg, func(s *Server) {
		s.beforePage = func(int) { once.Do(func() { close(started) }); <-release }
	})
	conn := dial(t, r.Addr())
	c := pb.NewRecommendationsClient(conn)
	done := make(chan error, 1)
	go func() {
		_, err := streamAll(context.Background(), c, &pb.RecommendRequest{UserId: "a", Limit: 2})
		done <- err
	}()
	<-started
	_, err := c.Recommend(context.Background(), &pb.RecommendRequest{UserId: "a", Limit: 2})
	wantCode(t, "second call", err, codes.Unavailable, "overloaded")
	_, err = streamAll(context.Background(), c, &pb.RecommendRequest{UserId: "a", Limit: 2})
	wantCode(t, "second stream", err, codes.Unavailable, "overloaded")
	if resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health while full: %v, %v", resp, err)
	}
	waitMetric(t, r, "rpc_in_flight 1")
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the admitted stream: %v", err)
	}
	waitMetric(t, r, `rpc_requests_total{code="UNAVAILABLE",method="Recommend"} 1`)
}

// Stop lets a stream in flight finish; meanwhile new calls are refused.
func TestGracefulShutdown(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s, err := New(testConfig(1000, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.beforePage = func(page int) {
		if page == 1 {
			once.Do(func() { close(started) })
			<-release
		}
	}
	r, err := s.start(testConfig(1000, 1))
	if err != nil {
		t.Fatal(err)
	}
	conn := dial(t, r.Addr())
	c := pb.NewRecommendationsClient(conn)
	type result struct {
		pages []*pb.RecommendPage
		err   error
	}
	done := make(chan result, 1)
	go func() {
		pages, err := streamAll(context.Background(), c, &pb.RecommendRequest{UserId: "a", Limit: 5, PageSize: 1})
		done <- result{pages, err}
	}()
	<-started
	stopped := make(chan struct{})
	go func() { r.Stop(5 * time.Second); close(stopped) }()

	// The health service says NOT_SERVING first; then new calls fail UNAVAILABLE.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still SERVING")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := pb.NewRecommendationsClient(dial(t, r.Addr())).Recommend(context.Background(), &pb.RecommendRequest{UserId: "a", Limit: 1})
		if err != nil {
			wantCode(t, "a new call after Stop", err, codes.Unavailable, "")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new calls still served")
		}
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned with a stream in flight")
	default:
	}
	close(release)
	res := <-done
	if res.err != nil || len(res.pages) != 5 {
		t.Fatalf("the stream in flight: %d pages, %v", len(res.pages), res.err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
}

// Stop cuts off what is left after the grace period.
func TestShutdownGraceIsCapped(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	started := make(chan struct{})
	var once sync.Once
	s, err := New(testConfig(10, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.beforePage = func(int) { once.Do(func() { close(started) }); <-block }
	r, err := s.start(testConfig(10, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := pb.NewRecommendationsClient(dial(t, r.Addr()))
	done := make(chan error, 1)
	go func() {
		_, err := streamAll(context.Background(), c, &pb.RecommendRequest{UserId: "a", Limit: 2})
		done <- err
	}()
	<-started
	start := time.Now()
	r.Stop(200 * time.Millisecond)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	wantCode(t, "the stream cut off", <-done, codes.Unavailable, "")
}

func BenchmarkRecommendUnary(b *testing.B) {
	r := newTest(b, testConfig(1000, 1), nil)
	c := pb.NewRecommendationsClient(dial(b, r.Addr()))
	req := &pb.RecommendRequest{UserId: "alice", Limit: 10, Features: 16}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Recommend(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
