package grpcserver

import (
	"context"
	"strings"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// codec is grpc-go's proto codec, except that a RecommendRequest it cannot decode is not an
// error: grpc-go turns any decoding error into INTERNAL, and the contract wants
// INVALID_ARGUMENT. The request is recorded in Server.bad, and the interceptors, which run
// right after the decoding, answer it (and forget it).
type codec struct{ s *Server }

var protoCodec = encoding.GetCodecV2(proto.Name)

func (c *codec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := protoCodec.Unmarshal(data, v)
	if req, ok := v.(*pb.RecommendRequest); ok && err != nil {
		c.s.bad.Store(req, err)
		return nil
	}
	return err
}

func (c *codec) Name() string { return proto.Name }

// malformed is the INVALID_ARGUMENT status of a request the codec could not decode, or nil.
func (s *Server) malformed(req any) error {
	r, ok := req.(*pb.RecommendRequest)
	if !ok {
		return nil
	}
	if err, bad := s.bad.LoadAndDelete(r); bad {
		return status.Error(codes.InvalidArgument,
			"not a RecommendRequest: "+recsvc.ProtoErrText(err.(error)))
	}
	return nil
}

// isOurs reports whether a full method name is one of the Recommendations service's; health
// checks and reflection are never refused.
func isOurs(fullMethod string) bool { return strings.HasPrefix(fullMethod, "/"+ServiceName+"/") }

// unary runs after grpc-go has decoded the request: a malformed one is answered, then the call
// is admitted or refused.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !isOurs(info.FullMethod) {
		return handler(ctx, req)
	}
	if err := s.malformed(req); err != nil {
		return nil, err
	}
	if !s.lim.Admit() {
		return nil, errOverloaded
	}
	defer s.lim.Release()
	return handler(ctx, req)
}

// stream runs before a stream's request is read: the call is admitted or refused first, and the
// request, once read, is answered if malformed.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !isOurs(info.FullMethod) {
		return handler(srv, ss)
	}
	if !s.lim.Admit() {
		return errOverloaded
	}
	defer s.lim.Release()
	return handler(srv, checkedStream{ss, s})
}

// checkedStream answers a malformed request as it is received.
type checkedStream struct {
	grpc.ServerStream
	s *Server
}

func (c checkedStream) RecvMsg(m any) error {
	if err := c.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return c.s.malformed(m)
}

// statsHandler counts every call of the Recommendations service when it ends, in
// rpc_requests_total and rpc_request_duration_seconds: calls that fail before any interceptor
// runs (a request over the receive limit) too, which interceptors would not see.
type statsHandler struct{ m *recsvc.Metrics }

type methodKey struct{}

// Context values, allocated once.
var (
	recommendValue any = recsvc.Recommend
	streamValue    any = recsvc.StreamRecommendations
)

func (h statsHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	switch info.FullMethodName {
	case fullRecommend:
		return context.WithValue(ctx, methodKey{}, recommendValue)
	case fullStream:
		return context.WithValue(ctx, methodKey{}, streamValue)
	}
	return ctx
}

func (h statsHandler) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	end, ok := rs.(*stats.End)
	if !ok {
		return
	}
	if meth, ok := ctx.Value(methodKey{}).(recsvc.Method); ok {
		h.m.Observe(meth, status.Code(end.Error), end.EndTime.Sub(end.BeginTime))
	}
}

func (statsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (statsHandler) HandleConn(context.Context, stats.ConnStats)                       {}
