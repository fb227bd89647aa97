package edge

import (
	"net/http"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func getHealth(t *testing.T, addr string) (*http.Response, []byte, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	start := time.Now()
	resp, body := do(t, req)
	return resp, body, time.Since(start)
}

// /healthz is 503 while the core is down or not serving, 200 once it serves, each within the
// health check's 250 ms.
func TestHealthz(t *testing.T) {
	coreAddr := freeAddr(t) // nothing listens there yet
	e := startEdge(t, testConfig(coreAddr), Options{})
	resp, body, took := getHealth(t, e.addr)
	wantError(t, resp, body, 503, "unavailable", "core "+coreAddr+": health check")
	if took > HealthTimeout+100*time.Millisecond || resp.Header.Get(RequestIDHeader) == "" {
		t.Errorf("answered after %v, X-Request-ID %q", took, resp.Header.Get(RequestIDHeader))
	}

	core := startCore(t, coreAddr)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, body, took = getHealth(t, e.addr)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %s with the core up", resp.StatusCode, body)
		}
	}
	if string(body) != `{"status":"ok"}` || took > HealthTimeout+100*time.Millisecond {
		t.Errorf("%s after %v", body, took)
	}

	core.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	resp, body, _ = getHealth(t, e.addr)
	wantError(t, resp, body, 503, "unavailable", "NOT_SERVING")
}
