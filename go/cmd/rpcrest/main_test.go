package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/patternbench/patternbench/go/internal/cmdtest"
)

// The test binary doubles as rpcrest when RPCREST_MAIN=1.
func TestMain(m *testing.M) { cmdtest.Main(m, "RPCREST_MAIN", main) }

// rpcrest answers a call and exits 0 on SIGTERM.
func TestServeAndTerminate(t *testing.T) {
	s := cmdtest.Start(t, "RPCREST_MAIN", "--listen", "127.0.0.1:0", "--items", "10", "--seed", "7")
	addr := s.Listening(t)
	resp, err := http.Post("http://"+addr+"/v1/recommend", "application/json", strings.NewReader(`{"userId": "grace", "limit": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"itemId":"item-00006"`) {
		t.Errorf("POST /v1/recommend = %d %s", resp.StatusCode, body)
	}
	s.Terminate(t)
}

// A bad flag is one line and exit status 2; rpcrest has no --metrics-listen.
func TestBadFlags(t *testing.T) {
	cmdtest.BadFlags(t, "RPCREST_MAIN",
		[]string{"--nope"}, []string{"--metrics-listen", "127.0.0.1:1"}, []string{"--items", "-3"}, []string{"--listen", ""})
}
