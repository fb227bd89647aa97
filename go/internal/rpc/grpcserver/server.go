// Package grpcserver is the rpc pattern's gRPC server in Go: the Recommendations service of
// proto/recommendations/v1 (unary Recommend, server-streaming StreamRecommendations), the
// standard health service, server reflection, and Prometheus metrics over HTTP on a second
// address.
//
// A call goes through, in order: grpc-go's receive limit (1 MiB: RESOURCE_EXHAUSTED); the codec
// (intercept.go), which marks a request that is not a RecommendRequest instead of failing,
// since grpc-go would answer INTERNAL; the interceptors, which answer a marked request
// INVALID_ARGUMENT and then admit the call or refuse it UNAVAILABLE (recsvc.Limiter); the
// handler, which validates (INVALID_ARGUMENT with ranking.Validate's message), checks the
// deadline before ranking and between a stream's messages (DEADLINE_EXCEEDED), and answers. A
// stats handler sees every call's end, errors before the handler included, and counts it.
package grpcserver

import (
	"context"
	"sync"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// MaxRecvBytes is the largest request accepted: 1 MiB, as over REST.
const MaxRecvBytes = 1 << 20

// ServiceName is the Recommendations service's full name, a health-check service name too.
const ServiceName = "recommendations.v1.Recommendations"

// Full method names, as grpc-go reports them.
const (
	fullRecommend = "/" + ServiceName + "/Recommend"
	fullStream    = "/" + ServiceName + "/StreamRecommendations"
)

// Server is the gRPC server with its services; Serve and Stop (run.go) drive it.
type Server struct {
	pb.UnimplementedRecommendationsServer
	core    *recsvc.Service
	lim     *recsvc.Limiter
	metrics *recsvc.Metrics
	health  *health.Server
	grpc    *grpc.Server
	bad     sync.Map // *pb.RecommendRequest → error: requests the codec could not decode

	// Tests only, set before serving: called before ranking and before each message of a stream.
	beforeRank func(ctx context.Context)
	beforePage func(page int)
}

// New builds the server of cfg (cfg.Listen and cfg.MetricsListen are Start's business).
func New(cfg recsvc.Config) (*Server, error) {
	core, err := recsvc.New(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{core: core, lim: recsvc.NewLimiter(cfg.MaxInFlight), health: health.NewServer()}
	s.metrics = recsvc.NewMetrics(s.lim)
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxRecvBytes),
		grpc.ForceServerCodecV2(&codec{s: s}),
		grpc.StatsHandler(statsHandler{s.metrics}),
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
	)
	pb.RegisterRecommendationsServer(s.grpc, s)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// The fixed errors.
var (
	errOverloaded = status.Error(codes.Unavailable, "overloaded: "+recsvc.Overloaded)
	errDeadline   = status.Error(codes.DeadlineExceeded, "the call's deadline passed")
)

// ctxErr is the status of a call whose context is done (DEADLINE_EXCEEDED once its deadline has
// passed, whatever ended it first), or nil.
func ctxErr(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	if recsvc.Expired(ctx) {
		return errDeadline
	}
	return status.FromContextError(ctx.Err()).Err()
}

// Recommend is the unary RPC.
func (s *Server) Recommend(ctx context.Context, req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
	items, err := s.rank(ctx, req)
	if err != nil {
		return nil, err
	}
	return &pb.RecommendResponse{UserId: req.GetUserId(), Items: items}, nil
}

// StreamRecommendations sends the same items page_size at a time (1 when 0); no message when
// nothing matches. The deadline is checked before every message.
func (s *Server) StreamRecommendations(req *pb.RecommendRequest, stream grpc.ServerStreamingServer[pb.RecommendPage]) error {
	ctx := stream.Context()
	items, err := s.rank(ctx, req)
	if err != nil {
		return err
	}
	for _, page := range recsvc.Pages(items, req.GetPageSize()) {
		if s.beforePage != nil {
			s.beforePage(int(page.Page))
		}
		if err := ctxErr(ctx); err != nil {
			return err
		}
		if err := stream.Send(page); err != nil {
			if cerr := ctxErr(ctx); cerr != nil {
				return cerr
			}
			return err
		}
	}
	return nil
}

// rank validates req, checks the deadline, and ranks.
func (s *Server) rank(ctx context.Context, req *pb.RecommendRequest) ([]*pb.Item, error) {
	if msg := recsvc.Check(req); msg != "" {
		return nil, status.Error(codes.InvalidArgument, msg)
	}
	if s.beforeRank != nil {
		s.beforeRank(ctx)
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	return s.core.Items(req), nil
}
