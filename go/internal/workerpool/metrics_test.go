package workerpool

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetrics: the contract's series carry the contract's bucket bounds, and
// only answers to /work are counted.
func TestMetrics(t *testing.T) {
	_, base := startService(t, Config{Workers: 3, Queue: 5, Timeout: time.Second}, nil)
	mustSend(t, "GET", spinURL(base, 1, 1), nil)
	mustSend(t, "POST", base+"/work", []byte(`{"kernel":"hash","rounds":1,"size":8}`))
	mustSend(t, "GET", base+"/work?kernel=x&rounds=1", nil)
	mustSend(t, "GET", base+"/nope", nil)    // not /work: not counted
	mustSend(t, "GET", base+"/healthz", nil) // not counted
	r := mustSend(t, "GET", base+"/metrics", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, name := range []string{
		"workerpool_requests_total", "workerpool_request_duration_seconds",
		"workerpool_task_duration_seconds", "workerpool_in_flight", "workerpool_workers",
	} {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("no %s in /metrics", name)
		}
	}
	for _, b := range DurationBuckets {
		le := strconv.FormatFloat(b, 'g', -1, 64)
		for _, series := range []string{
			`workerpool_request_duration_seconds_bucket{le="` + le + `"}`,
			`workerpool_task_duration_seconds_bucket{kernel="spin",le="` + le + `"}`,
			`workerpool_task_duration_seconds_bucket{kernel="hash",le="` + le + `"}`,
		} {
			if !strings.Contains(text, series+" ") {
				t.Errorf("no bucket %s", series)
			}
		}
	}
	if strings.Count(text, "workerpool_request_duration_seconds_bucket{") != len(DurationBuckets)+1 {
		t.Errorf("request duration has other buckets than the contract's")
	}
	for series, want := range map[string]float64{
		"workerpool_workers":                                    3,
		"workerpool_in_flight":                                  0,
		`workerpool_requests_total{code="200"}`:                 2,
		`workerpool_requests_total{code="400"}`:                 1,
		`workerpool_requests_total{code="404"}`:                 -1, // absent
		"workerpool_request_duration_seconds_count":             3,
		`workerpool_task_duration_seconds_count{kernel="spin"}`: 1,
		`workerpool_task_duration_seconds_count{kernel="hash"}`: 1,
	} {
		if want < 0 {
			if strings.Contains(text, series) {
				t.Errorf("%s present", series)
			}
			continue
		}
		if got := metric(t, base, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
