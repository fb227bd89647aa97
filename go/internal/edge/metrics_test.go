package edge

import (
	"strings"
	"testing"

	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
)

// The series exist from the start, the histograms with the rpc pattern's buckets.
func TestMetricsSeries(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	e := startEdge(t, testConfig(core.addr), Options{})
	body := scrape(t, e.addr)
	for _, want := range []string{
		`edge_requests_total{code="200",route="/v1/recommend"} 0`,
		`edge_requests_total{code="504",route="/v1/recommend:stream"} 0`,
		`edge_request_duration_seconds_bucket{route="/v1/recommend",le="0.0001"} 0`,
		`edge_request_duration_seconds_bucket{route="/v1/recommend:stream",le="10"} 0`,
		`edge_upstream_duration_seconds_bucket{le="0.00025"} 0`,
		`edge_retries_total{outcome="sent"} 0`,
		`edge_retries_total{outcome="budget_exhausted"} 0`,
		`edge_retries_total{outcome="deadline"} 0`,
		`edge_breaker_state{core="` + core.addr + `"} 0`,
		`edge_breaker_rejections_total{core="` + core.addr + `"} 0`,
		"edge_in_flight 0",
		// The rpc contract's own series, as every server of it exports them.
		`rpc_requests_total{code="OK",method="Recommend"} 0`,
		`rpc_request_duration_seconds_bucket{method="StreamRecommendations",le="0.0001"} 0`,
		"rpc_in_flight 0",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in /metrics", want)
		}
	}
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
	post(t, e.addr, restserver.StreamPath, `{"userId": "a", "limit": 2}`)
	wantMetric(t, e.addr, `edge_requests_total{code="200",route="/v1/recommend"} 1`)
	wantMetric(t, e.addr, `edge_request_duration_seconds_count{route="/v1/recommend:stream"} 1`)
	wantMetric(t, e.addr, `edge_upstream_duration_seconds_count 2`)
	wantMetric(t, e.addr, `rpc_requests_total{code="OK",method="Recommend"} 1`)
	wantMetric(t, e.addr, `rpc_request_duration_seconds_count{method="StreamRecommendations"} 1`)
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 0}`)
	wantMetric(t, e.addr, `rpc_requests_total{code="INVALID_ARGUMENT",method="Recommend"} 1`)
}
