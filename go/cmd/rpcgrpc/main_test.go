package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/patternbench/patternbench/go/internal/cmdtest"
)

// The test binary doubles as rpcgrpc when RPCGRPC_MAIN=1.
func TestMain(m *testing.M) { cmdtest.Main(m, "RPCGRPC_MAIN", main) }

// rpcgrpc announces both addresses, answers health checks and scrapes, and exits 0 on SIGTERM.
func TestServeAndTerminate(t *testing.T) {
	s := cmdtest.Start(t, "RPCGRPC_MAIN", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--items", "10")
	addrs := []string{s.Listening(t), s.Listening(t)}
	conn, err := grpc.NewClient(addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "recommendations.v1.Recommendations"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
	hresp, err := http.Get("http://" + addrs[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || !strings.Contains(string(body), "rpc_in_flight 0") {
		t.Errorf("/metrics: %d %.200s", hresp.StatusCode, body)
	}
	s.Terminate(t)
}

// A bad flag is one line and exit status 2.
func TestBadFlags(t *testing.T) {
	cmdtest.BadFlags(t, "RPCGRPC_MAIN",
		[]string{"--nope"}, []string{"--items", "0"}, []string{"--max-in-flight", "0"}, []string{"--metrics-listen", "x"}, []string{"extra"})
}
