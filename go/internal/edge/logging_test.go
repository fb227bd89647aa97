package edge

import (
	"log/slog"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
)

// At most one line per kind per second; the next says how many were left out.
func TestLimitedLog(t *testing.T) {
	logs := &lockedBuffer{}
	l := newLimitedLog(slog.New(slog.NewJSONHandler(logs, nil)))
	clock := &fakeClock{t: time.Unix(1000, 0)}
	l.now = clock.now
	for range 5 {
		l.Error("unavailable", "core call failed", slog.String("request_id", "x"))
	}
	l.Error("circuit_open", "call refused")
	clock.advance(999 * time.Millisecond)
	l.Error("unavailable", "core call failed")
	clock.advance(time.Millisecond)
	l.Error("unavailable", "core call failed")
	lines := logs.lines(t, "core call failed")
	if len(lines) != 2 || lines[0]["suppressed"] != 0.0 || lines[1]["suppressed"] != 5.0 ||
		lines[0]["request_id"] != "x" || lines[0]["kind"] != "unavailable" || lines[0]["level"] != "ERROR" {
		t.Errorf("lines %v", lines)
	}
	if n := len(logs.lines(t, "call refused")); n != 1 {
		t.Errorf("%d lines of another kind, want 1", n)
	}
}

// --log-requests writes one line per call with every field; errors with the core are logged
// without it, rate-limited.
func TestRequestLog(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, RequestIDHeader, "log-1", ClientIDHeader, "dave")
	post(t, e.addr, restserver.StreamPath, "garbage", RequestIDHeader, "log-2")
	lines := e.logs.lines(t, "request")
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2", len(lines))
	}
	ok, bad := lines[0], lines[1]
	for _, k := range []string{"time", "level", "msg", "request_id", "method", "path", "status", "grpc_code", "duration_ms",
		"deadline_ms", "client_id", "attempts"} {
		if _, there := ok[k]; !there {
			t.Errorf("no %s in %v", k, ok)
		}
	}
	if ok["request_id"] != "log-1" || ok["method"] != "POST" || ok["path"] != restserver.RecommendPath || ok["status"] != 200.0 ||
		ok["grpc_code"] != "OK" || ok["client_id"] != "dave" || ok["attempts"] != 1.0 || !(ok["duration_ms"].(float64) > 0) ||
		!(ok["deadline_ms"].(float64) > 900) {
		t.Errorf("line %v", ok)
	}
	if bad["status"] != 400.0 || bad["grpc_code"] != "" || bad["attempts"] != 0.0 || bad["client_id"] != anonymous {
		t.Errorf("line %v", bad)
	}

	quiet := testConfig(core.addr)
	quiet.LogRequests = false
	q := startEdge(t, quiet, Options{})
	failFirst(core, 1000, errUnavailable)
	for range 3 {
		post(t, q.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, RequestIDHeader, "fail")
	}
	if n := len(q.logs.lines(t, "request")); n != 0 {
		t.Errorf("%d request lines without --log-requests", n)
	}
	if l := q.logs.lines(t, "core call failed"); len(l) != 1 || l[0]["request_id"] != "fail" || l[0]["grpc_code"] != "UNAVAILABLE" {
		t.Errorf("9 failed attempts in a second logged as %v, want one line", l)
	}
}
