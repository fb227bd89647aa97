package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The test binary doubles as rpcgrpc when RPCGRPC_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("RPCGRPC_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rpcgrpc announces both addresses, answers health checks and scrapes, and exits 0 on SIGTERM.
func TestServeAndTerminate(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--items", "10")
	cmd.Env = append(os.Environ(), "RPCGRPC_MAIN=1", "GORACE=atexit_sleep_ms=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	r := bufio.NewReader(stderr)
	var addrs []string
	for range 2 {
		line, err := r.ReadString('\n')
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if err != nil || !ok {
			t.Fatalf("line %q (%v)", line, err)
		}
		addrs = append(addrs, addr)
	}
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
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}

// A bad flag is one line and exit status 2.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"--items", "0"}, {"--max-in-flight", "0"}, {"--metrics-listen", "x"}, {"extra"}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "RPCGRPC_MAIN=1", "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v: %v %q, want exit 2 and one line", args, err, out)
		}
	}
}
