// Package cmdtest runs a command's own test binary as the command, for the
// tests of go/cmd/*: it starts, announces where it listens, serves, and exits 0
// on SIGTERM; a bad flag is one line and exit status 2.
package cmdtest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Main is TestMain's body: with env=1 the test binary runs main instead of the
// tests.
func Main(m *testing.M, env string, main func()) {
	if os.Getenv(env) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(env string, args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env+"=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

// Server is the command started as a server.
type Server struct {
	cmd    *exec.Cmd
	stderr *bufio.Reader
}

// Start runs the command with args; it is killed when the test ends.
func Start(t *testing.T, env string, args ...string) *Server {
	t.Helper()
	cmd := command(env, args)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return &Server{cmd: cmd, stderr: bufio.NewReader(stderr)}
}

// Listening reads the next `listening on ADDR` line and returns ADDR.
func (s *Server) Listening(t *testing.T) string {
	t.Helper()
	line, err := s.stderr.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("want a `listening on ADDR` line, got %q (%v)", line, err)
	}
	return addr
}

// Terminate sends SIGTERM and fails the test unless the command exits 0.
func (s *Server) Terminate(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}

// BadFlags fails the test unless each argument list ends the command with
// exactly one line of output and exit status 2.
func BadFlags(t *testing.T, env string, cases ...[]string) {
	t.Helper()
	for _, args := range cases {
		out, err := command(env, args).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v: %v %q, want exit 2 and one line", args, err, out)
		}
	}
}
