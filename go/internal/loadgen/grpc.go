package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// grpcTarget makes unary calls of one method with one pre-encoded request
// over GRPCConns connections (default 1). One connection is what a real
// gRPC client uses for one server: HTTP/2 multiplexes every call on it, and
// neither grpc-go nor grpcio servers limit concurrent streams by default, so
// one connection carries any --max-in-flight. More connections help only when
// a single connection's reader or writer (one goroutine or thread on each
// side) is the bottleneck, as it can be on a many-core server; workers are
// spread over them round-robin by worker id, so no call contends for a
// counter.
type grpcTarget struct {
	conns   []*grpc.ClientConn
	method  string
	request []byte
	timeout time.Duration
}

func newGRPCTarget(cfg *Config) (*grpcTarget, error) {
	t := &grpcTarget{method: cfg.GRPCMethod, request: cfg.GRPCRequest, timeout: cfg.Timeout}
	for range cfg.GRPCConns {
		// passthrough: the address is dialled as written, no resolver.
		cc, err := grpc.NewClient("passthrough:///"+cfg.target.host,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})),
		)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("%w: grpc client: %v", ErrNoTarget, err)
		}
		cc.Connect() // dial now, during the warm-up, not on the first call
		t.conns = append(t.conns, cc)
	}
	return t, nil
}

func (t *grpcTarget) session(worker int) session {
	return &grpcSession{t: t, cc: t.conns[worker%len(t.conns)]}
}

func (t *grpcTarget) close() {
	for _, cc := range t.conns {
		_ = cc.Close()
	}
}

type grpcSession struct {
	t  *grpcTarget
	cc *grpc.ClientConn
}

func (s *grpcSession) do(uint64) string {
	ctx, cancel := context.WithTimeout(context.Background(), s.t.timeout)
	defer cancel()
	err := s.cc.Invoke(ctx, s.t.method, s.t.request, nil)
	if err == nil {
		return ""
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return KindTimeout
	}
	return codeKind(status.Code(err))
}

// codeKinds holds "grpc <Code>" for every defined code, built once.
var codeKinds = func() []string {
	k := make([]string, 17)
	for i := range k {
		k[i] = "grpc " + codes.Code(i).String()
	}
	return k
}()

func codeKind(c codes.Code) string {
	if int(c) < len(codeKinds) {
		return codeKinds[c]
	}
	return "grpc " + c.String()
}

// rawCodec passes messages through as bytes: the request is encoded once,
// by whoever wrote --grpc-request-base64, and the answer is not decoded, only
// received whole. Its name is "proto" so that the content type is the usual
// application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal discards the answer, which gRPC has already read in full.
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

func (rawCodec) Name() string { return "proto" }
