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
)

// The test binary doubles as rpcrest when RPCREST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("RPCREST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rpcrest answers a call and exits 0 on SIGTERM.
func TestServeAndTerminate(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--listen", "127.0.0.1:0", "--items", "10", "--seed", "7")
	cmd.Env = append(os.Environ(), "RPCREST_MAIN=1", "GORACE=atexit_sleep_ms=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("first line %q (%v)", line, err)
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
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}

// A bad flag is one line and exit status 2; rpcrest has no --metrics-listen.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"--metrics-listen", "127.0.0.1:1"}, {"--items", "-3"}, {"--listen", ""}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "RPCREST_MAIN=1", "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v: %v %q, want exit 2 and one line", args, err, out)
		}
	}
}
