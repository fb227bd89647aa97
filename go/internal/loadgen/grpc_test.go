package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/grpcserver"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startHealth serves the standard gRPC health service in process.
func startHealth(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer()) // "" is SERVING
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	addr := startHealth(t)
	for _, c := range []struct {
		name, method string
		request      []byte
		kind         string
		conns        int
	}{
		// An empty request asks about the server as a whole: SERVING.
		{"serving", "/grpc.health.v1.Health/Check", nil, "", 1},
		{"two connections", "/grpc.health.v1.Health/Check", nil, "", 2},
		// HealthCheckRequest{service: "foo"}, encoded by hand.
		{"unknown service", "/grpc.health.v1.Health/Check", []byte("\x0a\x03foo"), "grpc NotFound", 1},
		{"unknown method", "/grpc.health.v1.Health/Nope", nil, "grpc Unimplemented", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := runConfig(t, "grpc://"+addr, 200, 250*time.Millisecond, HTTPClientRaw)
			cfg.GRPCMethod, cfg.GRPCRequest, cfg.GRPCConns = c.method, c.request, c.conns
			res := mustRun(t, cfg)
			if res.Requests != 50 {
				t.Errorf("%d requests, want 50", res.Requests)
			}
			if c.kind == "" && res.Errors != 0 {
				t.Errorf("errors %v", res.ErrorKinds)
			}
			if c.kind != "" && (res.Errors != 50 || res.ErrorKinds[c.kind] != 50) {
				t.Errorf("%d errors %v, want 50 %s", res.Errors, res.ErrorKinds, c.kind)
			}
		})
	}
}

func TestGRPCUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := runConfig(t, "grpc://"+addr, 100, 100*time.Millisecond, HTTPClientRaw)
	cfg.GRPCMethod = "/grpc.health.v1.Health/Check"
	res := mustRun(t, cfg)
	if res.Requests != 10 || res.ErrorKinds["grpc Unavailable"] != 10 {
		t.Errorf("%d requests, errors %v, want 10 grpc Unavailable", res.Requests, res.ErrorKinds)
	}
}

// bytesCodec is a server codec of undecoded messages: requests are received
// into a *[]byte, answers sent from a []byte.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (bytesCodec) Name() string { return "proto" }

// startRawGRPC serves every method with handle, which gets the method's
// name and the request's bytes and answers on stream: one message for a
// unary method, any number for a streaming one.
func startRawGRPC(t *testing.T, handle func(method string, req []byte, stream grpc.ServerStream) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(bytesCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(stream)
			var req []byte
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			return handle(method, req, stream)
		}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// --grpc-vary: the server sees the pre-encoded request followed by the
// appended fields, whose values vary per call within their ranges, and
// which a protobuf parser takes over the request's own values.
func TestGRPCVary(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		reqs [][]byte
	)
	addr := startRawGRPC(t, func(_ string, req []byte, stream grpc.ServerStream) error {
		mu.Lock()
		reqs = append(reqs, req)
		mu.Unlock()
		return stream.SendMsg([]byte{})
	})
	base, err := proto.Marshal(&pb.RecommendRequest{UserId: "base", Limit: 10, Features: 4})
	if err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(t, "grpc://"+addr, 200, 250*time.Millisecond, HTTPClientRaw)
	cfg.GRPCMethod, cfg.GRPCRequest = "/recommendations.v1.Recommendations/Recommend", base
	cfg.GRPCVary = []GRPCVary{
		{Field: 1, Kind: VaryString, Template: "user-{rand:100000}"},
		{Field: 2, Kind: VaryVarint, Template: "{rand:50}"},
		{Field: 5, Kind: VaryVarint, Template: "3"},
	}
	res := mustRun(t, cfg)
	if res.Requests != 50 || res.Errors != 0 {
		t.Fatalf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorKinds)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 50 {
		t.Fatalf("the server saw %d calls, want 50", len(reqs))
	}
	users, limits := map[string]bool{}, map[int32]bool{}
	for _, b := range reqs {
		if !bytes.HasPrefix(b, base) {
			t.Fatalf("request %x does not start with the base request %x", b, base)
		}
		var m pb.RecommendRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(m.GetUserId(), "user-"))
		if !strings.HasPrefix(m.GetUserId(), "user-") || err != nil || n < 0 || n >= 100000 {
			t.Errorf("user_id %q", m.GetUserId())
		}
		if m.GetLimit() < 0 || m.GetLimit() >= 50 || m.GetFeatures() != 4 || m.GetPageSize() != 3 || m.GetFilters() != nil {
			t.Errorf("request %v", &m)
		}
		users[m.GetUserId()] = true
		limits[m.GetLimit()] = true
	}
	if len(users) < 45 || len(limits) < 10 { // 50 draws of 100,000 and of 50
		t.Errorf("%d distinct user ids, %d distinct limits in 50 calls", len(users), len(limits))
	}
}

// The fields take independent digits of the draw, after the URL's (none
// for gRPC), and a session rebuilds its request without allocating.
func TestGRPCVaryDigits(t *testing.T) {
	cfg := runConfig(t, "grpc://127.0.0.1:1", 1, time.Second, HTTPClientRaw)
	cfg.GRPCMethod, cfg.GRPCRequest = "/a.B/C", []byte{0x20, 0x04} // features = 4
	cfg.GRPCVary = []GRPCVary{{1, VaryString, "u{rand:3}-{rand:2}"}, {2, VaryVarint, "{rand:4}"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.space != 24 {
		t.Fatalf("space %d, want 24", cfg.space)
	}
	s := &grpcSession{t: &grpcTarget{request: cfg.GRPCRequest, vary: cfg.vary}}
	seen := map[string]bool{}
	for d := range cfg.space {
		var m pb.RecommendRequest
		if err := proto.Unmarshal(s.request(d).(*variedRequest).b, &m); err != nil {
			t.Fatal(err)
		}
		if m.GetFeatures() != 4 {
			t.Errorf("draw %d: %v", d, &m)
		}
		seen[fmt.Sprintf("%s/%d", m.GetUserId(), m.GetLimit())] = true
	}
	if len(seen) != 24 || !seen["u0-0/0"] || !seen["u2-1/3"] {
		t.Errorf("requests %v", seen)
	}
	if n := testing.AllocsPerRun(100, func() { s.request(17) }); n != 0 {
		t.Errorf("%v allocations to build a request", n)
	}
}

// --grpc-stream against the recommendations server: limit 5 at page_size 1
// is five messages per call, each call one request in the latency
// histograms, and the first-message and gap histograms and the message
// count cover the calls of the window.
func TestGRPCStream(t *testing.T) {
	t.Parallel()
	srv, err := grpcserver.Start(recsvc.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		Items: 1000, Seed: 1, MaxInFlight: 128})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(time.Second) })
	req, err := proto.Marshal(&pb.RecommendRequest{UserId: "u", Limit: 5, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(t, "grpc://"+srv.Addr(), 100, 200*time.Millisecond, HTTPClientRaw)
	cfg.GRPCMethod = "/" + grpcserver.ServiceName + "/StreamRecommendations"
	cfg.GRPCRequest, cfg.GRPCStream = req, true
	cfg.GRPCVary = []GRPCVary{{1, VaryString, "user-{rand:1000}"}}
	cfg.Warmup = 100 * time.Millisecond // its streams are not counted
	res := mustRun(t, cfg)
	if res.Requests != 20 || res.Errors != 0 {
		t.Fatalf("%d requests, %d errors %v; want 20, 0", res.Requests, res.Errors, res.ErrorKinds)
	}
	st := res.Stream
	if st == nil {
		t.Fatal("no stream object")
	}
	if st.Messages != 100 || st.MessagesPerS != 500 {
		t.Errorf("%d messages, %v per second; want 100, 500", st.Messages, st.MessagesPerS)
	}
	if res.corrected.TotalCount() != 20 || res.uncorrected.TotalCount() != 20 {
		t.Errorf("%d corrected, %d uncorrected latencies, want 20", res.corrected.TotalCount(), res.uncorrected.TotalCount())
	}
	if res.first.TotalCount() != 20 || res.gap.TotalCount() != 80 {
		t.Errorf("%d first messages, %d gaps; want 20, 80", res.first.TotalCount(), res.gap.TotalCount())
	}
	// Per call, the first message comes before the end of the stream.
	if res.first.Max() > res.corrected.Max() || res.corrected.Max() == 0 {
		t.Errorf("first message max %d µs, latency max %d µs", res.first.Max(), res.corrected.Max())
	}
	// The JSON carries the same, in the histograms' encoding.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Stream map[string]any `json:"stream"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	sameShape(t, "stream.", doc.Stream, map[string]any{"messages": 0.0, "messages_per_s": 0.0,
		"histograms": map[string]any{"first_message": "", "gap": ""}})
	for name, want := range map[string]int64{"first_message": 20, "gap": 80} {
		h, err := DecodeHistogram(doc.Stream["histograms"].(map[string]any)[name].(string))
		if err != nil {
			t.Fatal(err)
		}
		if h.TotalCount() != want {
			t.Errorf("stream.histograms.%s holds %d values, want %d", name, h.TotalCount(), want)
		}
	}
}

// A stream that fails after some messages is an error of its status's
// kind, its messages counted; an empty stream is a success without any.
func TestGRPCStreamEnds(t *testing.T) {
	t.Parallel()
	addr := startRawGRPC(t, func(method string, _ []byte, stream grpc.ServerStream) error {
		if method == "/t.S/Empty" {
			return nil
		}
		for range 2 {
			if err := stream.SendMsg([]byte("\x08\x01")); err != nil {
				return err
			}
		}
		return status.Error(codes.Aborted, "stop")
	})
	for _, c := range []struct {
		method       string
		kind         string
		messages     int64
		first, gaps  int64
		wantErrors   int64
		wantRequests int64
	}{
		{"/t.S/Fail", "grpc Aborted", 40, 20, 20, 20, 20},
		{"/t.S/Empty", "", 0, 0, 0, 0, 20},
	} {
		t.Run(path.Base(c.method), func(t *testing.T) {
			cfg := runConfig(t, "grpc://"+addr, 100, 200*time.Millisecond, HTTPClientRaw)
			cfg.GRPCMethod, cfg.GRPCStream = c.method, true
			res := mustRun(t, cfg)
			if res.Requests != c.wantRequests || res.Errors != c.wantErrors || (c.kind != "" && res.ErrorKinds[c.kind] != c.wantErrors) {
				t.Errorf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorKinds)
			}
			if res.Stream.Messages != c.messages || res.first.TotalCount() != c.first || res.gap.TotalCount() != c.gaps {
				t.Errorf("%d messages, %d first, %d gaps; want %d, %d, %d", res.Stream.Messages,
					res.first.TotalCount(), res.gap.TotalCount(), c.messages, c.first, c.gaps)
			}
		})
	}
}

// Answers over grpc-go's default 4 MiB limit are received, unary and
// streamed (up to maxRecvMessage).
func TestGRPCLargeMessages(t *testing.T) {
	t.Parallel()
	big := make([]byte, 4<<20+1000)
	addr := startRawGRPC(t, func(method string, _ []byte, stream grpc.ServerStream) error {
		n := 1
		if method == "/t.S/Stream" {
			n = 2
		}
		for range n {
			if err := stream.SendMsg(big); err != nil {
				return err
			}
		}
		return nil
	})
	for _, method := range []string{"/t.S/Unary", "/t.S/Stream"} {
		t.Run(path.Base(method), func(t *testing.T) {
			cfg := runConfig(t, "grpc://"+addr, 10, 300*time.Millisecond, HTTPClientRaw)
			cfg.GRPCMethod, cfg.GRPCStream = method, method == "/t.S/Stream"
			res := mustRun(t, cfg)
			if res.Requests != 3 || res.Errors != 0 {
				t.Errorf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorKinds)
			}
			// At least one answer within the window; at most all of them.
			calls := int64(1)
			if cfg.GRPCStream {
				calls = 2
			}
			if r := res.WireReceivedBytes; r < int64(len(big)) || r > 3*calls*int64(len(big))+1<<20 {
				t.Errorf("received %d bytes on the wire", r)
			}
		})
	}
}
