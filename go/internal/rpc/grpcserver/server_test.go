package grpcserver

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/rpctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// testConfig is a server on free ports.
func testConfig(items int, seed uint64) recsvc.Config {
	return recsvc.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Items: items, Seed: seed, MaxInFlight: 128}
}

// startTest starts s (its hooks set) and stops it when the test ends.
func startTest(t testing.TB, s *Server, cfg recsvc.Config) *Running {
	t.Helper()
	r, err := s.start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(5 * time.Second) })
	return r
}

// newTest builds and starts a server of cfg.
func newTest(t testing.TB, cfg recsvc.Config, hooks func(*Server)) *Running {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hooks != nil {
		hooks(s)
	}
	return startTest(t, s, cfg)
}

// dial is a client connection to addr, closed when the test ends.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// streamAll runs StreamRecommendations to its end: the pages and the final status.
func streamAll(ctx context.Context, c pb.RecommendationsClient, req *pb.RecommendRequest) ([]*pb.RecommendPage, error) {
	st, err := c.StreamRecommendations(ctx, req)
	if err != nil {
		return nil, err
	}
	var pages []*pb.RecommendPage
	for {
		p, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return pages, nil
		}
		if err != nil {
			return pages, err
		}
		pages = append(pages, p)
	}
}

// wantCode fails unless err has code want (and, when msg is not "", contains msg).
func wantCode(t testing.TB, what string, err error, want codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want || !strings.Contains(st.Message(), msg) {
		t.Fatalf("%s: got %v %q, want %v containing %q", what, st.Code(), st.Message(), want, msg)
	}
}

func TestRankingVectorsOverGRPC(t *testing.T) {
	cases := rpctest.Cases(t)
	for _, table := range rpctest.Tables(cases) {
		r := newTest(t, testConfig(int(table[0]), table[1]), nil)
		c := pb.NewRecommendationsClient(dial(t, r.Addr()))
		ctx := context.Background()
		for _, tc := range cases {
			if tc.Items != int(table[0]) || tc.Seed != table[1] {
				continue
			}
			t.Run(tc.Name, func(t *testing.T) {
				req := tc.Proto()
				resp, err := c.Recommend(ctx, req)
				pages, serr := streamAll(ctx, c, req)
				if tc.Error != "" {
					wantCode(t, "Recommend", err, codes.InvalidArgument, tc.Error)
					wantCode(t, "StreamRecommendations", serr, codes.InvalidArgument, tc.Error)
					if status.Convert(err).Message() != tc.Error || len(pages) != 0 {
						t.Fatalf("message %q, %d pages", status.Convert(err).Message(), len(pages))
					}
					return
				}
				if err != nil || serr != nil {
					t.Fatalf("Recommend: %v; StreamRecommendations: %v", err, serr)
				}
				if resp.GetUserId() != req.GetUserId() {
					t.Fatalf("user_id %q, want %q", resp.GetUserId(), req.GetUserId())
				}
				tc.Check(t, resp.GetItems())
				size := max(1, int(req.GetPageSize()))
				var streamed []*pb.Item
				for i, p := range pages {
					last := i == len(pages)-1
					if p.GetPage() != int32(i) || len(p.GetItems()) > size || (!last && len(p.GetItems()) != size) || len(p.GetItems()) == 0 {
						t.Fatalf("page %d: number %d, %d items (page size %d)", i, p.GetPage(), len(p.GetItems()), size)
					}
					streamed = append(streamed, p.GetItems()...)
				}
				tc.Check(t, streamed)
			})
		}
	}
}

// A stream whose filters match nothing ends OK without a message.
func TestNothingMatches(t *testing.T) {
	r := newTest(t, testConfig(1, 1), nil) // one item, a book
	c := pb.NewRecommendationsClient(dial(t, r.Addr()))
	req := &pb.RecommendRequest{UserId: "u", Limit: 5, Filters: &pb.Filters{Categories: []pb.Category{pb.Category_CATEGORY_MUSIC}}}
	pages, err := streamAll(context.Background(), c, req)
	if err != nil || len(pages) != 0 {
		t.Fatalf("got %d pages, %v; want none, OK", len(pages), err)
	}
	resp, err := c.Recommend(context.Background(), req)
	if err != nil || len(resp.GetItems()) != 0 || resp.GetUserId() != "u" {
		t.Fatalf("Recommend: %v, %v", resp, err)
	}
}

// rawCodec sends []byte as they are, to put bytes on the wire that are no message.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// rawCall sends body to method (unary or server-streaming) and returns the call's status.
func rawCall(t *testing.T, conn *grpc.ClientConn, method string, body []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if method == fullRecommend {
		var out []byte
		return conn.Invoke(ctx, method, body, &out, grpc.ForceCodecV2(rawCodec{}))
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	if err := st.SendMsg(body); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_ = st.CloseSend()
	for {
		var out []byte
		if err := st.RecvMsg(&out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestErrorsAreTheContractsNeverInternal(t *testing.T) {
	r := newTest(t, testConfig(1000, 1), nil)
	conn := dial(t, r.Addr())
	valid := func(mutate func(*pb.RecommendRequest)) []byte {
		req := &pb.RecommendRequest{UserId: "alice", Limit: 10}
		mutate(req)
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		body []byte
		code codes.Code
		msg  string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff}, codes.InvalidArgument, "not a RecommendRequest"},
		{"truncated length", []byte{0x0a, 0x05, 'a'}, codes.InvalidArgument, "not a RecommendRequest"},
		{"user_id not UTF-8", []byte{0x0a, 0x02, 0xc3, 0x28, 0x10, 0x01}, codes.InvalidArgument, "not a RecommendRequest"},
		{"negative limit", valid(func(q *pb.RecommendRequest) { q.Limit = -1 }), codes.InvalidArgument, "limit: must be 1 to 1000, got -1"},
		{"limit 5000", valid(func(q *pb.RecommendRequest) { q.Limit = 5000 }), codes.InvalidArgument, "limit: must be 1 to 1000, got 5000"},
		{"category 9", valid(func(q *pb.RecommendRequest) { q.Filters = &pb.Filters{Categories: []pb.Category{9}} }),
			codes.InvalidArgument, "filters.categories: must be 1 to 4 (CATEGORY_BOOKS to CATEGORY_TOOLS), got 9"},
		{"over 1 MiB", valid(func(q *pb.RecommendRequest) { q.UserId = strings.Repeat("u", MaxRecvBytes) }), codes.ResourceExhausted, ""},
		{"unknown field kept", append(valid(func(*pb.RecommendRequest) {}), 0xf8, 0x01, 0x01), codes.OK, ""}, // field 31 = 1
	}
	for _, tc := range cases {
		for _, method := range []string{fullRecommend, fullStream} {
			t.Run(tc.name+" "+method[strings.LastIndex(method, "/")+1:], func(t *testing.T) {
				err := rawCall(t, conn, method, tc.body)
				t.Log(err)
				wantCode(t, "call", err, tc.code, tc.msg)
			})
		}
	}
	// The codec forgets what it marked.
	n := 0
	r.bad.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d malformed requests still recorded", n)
	}
}

func TestDeadlineExceeded(t *testing.T) {
	r := newTest(t, testConfig(1000, 1), func(s *Server) {
		s.beforeRank = func(context.Context) { time.Sleep(20 * time.Millisecond) } // past a 1 ms deadline
	})
	c := pb.NewRecommendationsClient(dial(t, r.Addr()))
	big := &pb.RecommendRequest{UserId: "alice", Limit: 1000, Features: 256, PageSize: 1}
	for _, name := range []string{"Recommend", "StreamRecommendations"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			var err error
			if name == "Recommend" {
				_, err = c.Recommend(ctx, big)
			} else {
				_, err = streamAll(ctx, c, big)
			}
			wantCode(t, name, err, codes.DeadlineExceeded, "")
		})
	}
	// The server's own answer: ranking is not started past the deadline.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	_, err := r.Recommend(ctx, big)
	wantCode(t, "Recommend past its deadline", err, codes.DeadlineExceeded, "")
	// Between pages: a stream that outlives its deadline ends DEADLINE_EXCEEDED, having sent some.
	r2 := newTest(t, testConfig(1000, 1), func(s *Server) {
		s.beforePage = func(page int) {
			if page == 3 {
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
	c2 := pb.NewRecommendationsClient(dial(t, r2.Addr()))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	pages, err := streamAll(ctx2, c2, &pb.RecommendRequest{UserId: "alice", Limit: 10, PageSize: 1})
	wantCode(t, "stream past its deadline", err, codes.DeadlineExceeded, "")
	if len(pages) > 3 {
		t.Errorf("%d pages sent past the deadline", len(pages))
	}
	waitMetric(t, r2, `rpc_requests_total{code="DEADLINE_EXCEEDED",method="StreamRecommendations"} 1`)
	// Without a delay: 1 ms is too short for a thousand messages of 256 features.
	ctx3, cancel3 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel3()
	_, err = streamAll(ctx3, c2, &pb.RecommendRequest{UserId: "bob", Limit: 1000, Features: 256, PageSize: 1})
	wantCode(t, "a large stream in 1 ms", err, codes.DeadlineExceeded, "")
}
