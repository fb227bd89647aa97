package loadgen

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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
