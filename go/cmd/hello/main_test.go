package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/patternbench/patternbench/go/internal/cmdtest"
)

// The test binary doubles as hello when HELLO_MAIN=1.
func TestMain(m *testing.M) { cmdtest.Main(m, "HELLO_MAIN", main) }

// hello serves GET / until SIGTERM, then exits 0.
func TestServeAndTerminate(t *testing.T) {
	s := cmdtest.Start(t, "HELLO_MAIN", "--listen", "127.0.0.1:0")
	addr := s.Listening(t)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 26 {
		t.Errorf("GET / = %d %q", resp.StatusCode, body)
	}
	s.Terminate(t)
}

func TestBadFlag(t *testing.T) {
	cmdtest.BadFlags(t, "HELLO_MAIN", []string{"--nope"})
}
