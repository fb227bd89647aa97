package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/cmdtest"
	"github.com/patternbench/patternbench/go/internal/rpc/grpcserver"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
)

// The test binary doubles as edge when EDGE_MAIN=1.
func TestMain(m *testing.M) { cmdtest.Main(m, "EDGE_MAIN", main) }

// edge answers a call through a core, logs its start in JSON before `listening on ADDR`, and
// exits 0 on SIGTERM after logging its stop.
func TestServeAndTerminate(t *testing.T) {
	core, err := grpcserver.Start(recsvc.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Items: 10, Seed: 7, MaxInFlight: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Stop(time.Second) })
	cmd := exec.Command(os.Args[0], "--listen", "127.0.0.1:0", "--core", core.Addr(), "--log-requests")
	cmd.Env = append(os.Environ(), "EDGE_MAIN=1", "GORACE=atexit_sleep_ms=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewReader(stderr)
	var addr string
	for addr == "" {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("no `listening on ADDR` line: %v", err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on "); ok {
			addr = a
		} else if !strings.Contains(line, `"msg":"edge starting"`) {
			t.Fatalf("before `listening on`: %q", line)
		}
	}
	resp, err := http.Post("http://"+addr+"/v1/recommend", "application/json", strings.NewReader(`{"userId": "grace", "limit": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"itemId":"item-00006"`) {
		t.Errorf("POST /v1/recommend = %d %s", resp.StatusCode, body)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(lines)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
	for _, msg := range []string{`"msg":"request"`, `"msg":"edge shutting down"`, `"msg":"edge stopped"`} {
		if !strings.Contains(string(rest), msg) {
			t.Errorf("no %s line in %s", msg, rest)
		}
	}
}

// A bad flag is one line and exit status 2.
func TestBadFlags(t *testing.T) {
	cmdtest.BadFlags(t, "EDGE_MAIN",
		[]string{"--nope"}, []string{"--listen", "127.0.0.1:1"}, []string{"--core", "127.0.0.1:1", "--trace", "x"},
		[]string{"--core", "127.0.0.1:1", "--budget-ms", "-1"}, []string{"--core", "127.0.0.1:1", "--auth", "basic"})
}
