package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as loadgen: with LOADGEN_MAIN=1 it runs main, so
// that exit codes and signals are tested on the real command without a
// separate build.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	// No race-detector pause at exit (a second, by default).
	cmd.Env = append(os.Environ(), "LOADGEN_MAIN=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	return ee.ExitCode()
}

func TestBadFlag(t *testing.T) {
	var stderr bytes.Buffer
	cmd := command("--url", "http://127.0.0.1:1/", "--rate", "-1", "--duration", "1s")
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd.Run()); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "--rate") {
		t.Errorf("stderr %q: want one line naming --rate", s)
	}
}

func TestRunAndSummary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout bytes.Buffer
	cmd := command("--url", srv.URL+"/", "--rate", "100", "--duration", "200ms", "--json", out)
	cmd.Stdout = &stdout
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"achieved", "corrected", "uncorrected", "95.000%", "99.990%", "max", "slip", "CPU", "GOMAXPROCS", "Wire"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	var res struct{ Requests int }
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &res); err != nil || res.Requests != 20 {
		t.Errorf("result %s (%v)", b, err)
	}
}

// SIGINT stops the run: exit 130, and the JSON is still written, marked
// interrupted.
func TestInterruptWritesJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "r.json")
	cmd := command("--url", srv.URL+"/", "--rate", "100", "--duration", "1m", "--json", out, "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd.Wait()); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	var res struct {
		Requests    int
		Interrupted bool
		Window      struct {
			DurationS float64 `json:"duration_s"`
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Requests < 10 || res.Window.DurationS < 0.2 || res.Window.DurationS > 5 {
		t.Errorf("result after SIGINT: %+v", res)
	}
}
