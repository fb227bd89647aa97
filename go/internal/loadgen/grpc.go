package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// maxRecvMessage is the largest answer message accepted, unary or streamed:
// 64 MiB, where grpc-go's default is 4 MiB (1,000 items of 4,096 float
// features are 16 MB).
const maxRecvMessage = 64 << 20

// grpcTarget calls one method, unary or (--grpc-stream) server-streaming,
// with one pre-encoded request, to which --grpc-vary appends fields per call,
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
	fixed   any // request, converted once
	vary    []varyField
	stream  bool
	timeout time.Duration
}

func newGRPCTarget(cfg *Config, wire *wireCounter) (*grpcTarget, error) {
	t := &grpcTarget{method: cfg.GRPCMethod, request: cfg.GRPCRequest, fixed: cfg.GRPCRequest,
		vary: cfg.vary, stream: cfg.GRPCStream, timeout: cfg.Timeout}
	dialer := wire.dialContext(&net.Dialer{})
	for range cfg.GRPCConns {
		// passthrough: the address is dialled as written, no resolver.
		cc, err := grpc.NewClient("passthrough:///"+cfg.target.host,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return dialer(ctx, "tcp", addr)
			}),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(maxRecvMessage)),
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
	t   *grpcTarget
	cc  *grpc.ClientConn
	req variedRequest // the request with the --grpc-vary fields, rebuilt per call
}

// variedRequest is a request encoded into a buffer its session reuses:
// rawCodec sends a copy, since grpc-go may still be writing a message out
// after the call has returned.
type variedRequest struct{ b []byte }

// request returns the message for draw: the pre-encoded request, and with
// --grpc-vary the fields appended in the session's buffer.
func (s *grpcSession) request(draw uint64) any {
	if len(s.t.vary) == 0 {
		return s.t.fixed
	}
	b := append(s.req.b[:0], s.t.request...)
	for i := range s.t.vary {
		b, draw = s.t.vary[i].appendTo(b, draw)
	}
	s.req.b = b
	return &s.req
}

// streamDesc describes a server-streaming method.
var streamDesc = grpc.StreamDesc{ServerStreams: true}

func (s *grpcSession) do(ctx context.Context, draw uint64, log *msgLog) string {
	ctx, cancel := context.WithTimeout(ctx, s.t.timeout)
	defer cancel()
	var err error
	if s.t.stream {
		err = s.stream(ctx, s.request(draw), log)
	} else {
		err = s.cc.Invoke(ctx, s.t.method, s.request(draw), nil)
	}
	if err == nil {
		return ""
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return KindTimeout
	}
	return codeKind(status.Code(err))
}

// stream makes one server-streaming call: it sends req and receives every
// message, undecoded, noting each one's arrival in log, until the end of the
// stream (nil) or an error.
func (s *grpcSession) stream(ctx context.Context, req any, log *msgLog) error {
	cs, err := s.cc.NewStream(ctx, &streamDesc, s.t.method)
	if err != nil {
		return err
	}
	// io.EOF: the server ended the stream already; RecvMsg tells why.
	if err := cs.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		if err := cs.RecvMsg(nil); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		log.arrived()
	}
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
// by whoever wrote --grpc-request-base64 (plus the --grpc-vary fields), and
// the answers are not decoded, only received whole. Its name is "proto" so that the content type is the usual
// application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case []byte: // never written to: sent as is
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case *variedRequest: // reused by its session: copied (pooled when large)
		return mem.BufferSlice{mem.Copy(m.b, mem.DefaultBufferPool())}, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

// Unmarshal discards the answer, which gRPC has already read in full.
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

func (rawCodec) Name() string { return "proto" }
