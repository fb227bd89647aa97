package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/patternbench/patternbench/go/internal/cmdtest"
)

// The test binary doubles as dbpgx when DBPGX_MAIN=1.
func TestMain(m *testing.M) { cmdtest.Main(m, "DBPGX_MAIN", main) }

// dbpgx starts with its database down, serves /healthz, answers a read 503
// with Retry-After: 1, and exits 0 on SIGTERM.
func TestServeWithTheDatabaseDown(t *testing.T) {
	s := cmdtest.Start(t, "DBPGX_MAIN", "--listen", "127.0.0.1:0",
		"--dsn", "postgresql://bench_app@127.0.0.1:1/bench", "--pool-size", "2", "--acquire-timeout-ms", "500")
	addr := s.Listening(t)
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	if resp, body := get("/healthz"); resp.StatusCode != 200 || body != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/items/1"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(body, `"unavailable"`) {
		t.Errorf("GET /items/1 = %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, body := get("/metrics"); resp.StatusCode != 200 || !strings.Contains(body, "db_unavailable_total 1") {
		t.Errorf("GET /metrics = %d, want db_unavailable_total 1", resp.StatusCode)
	}
	s.Terminate(t)
}

// A bad flag is one line and exit status 2.
func TestBadFlags(t *testing.T) {
	cmdtest.BadFlags(t, "DBPGX_MAIN",
		[]string{"--nope"}, []string{"--pool-size", "0"}, []string{"--items", "0"},
		[]string{"--acquire-timeout-ms", "0"}, []string{"--statement-timeout-ms", "x"},
		[]string{"--listen", ""}, []string{"--dsn", "postgresql://u@h:port/db"}, []string{"extra"})
}
