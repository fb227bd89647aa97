package loadgen

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestSummaryPercentiles: the latency table has a row per summary percentile,
// p95 among them, in increasing order, each reading both histograms; over
// latencies of 1 to 10,000 µs, percentile p is p% of 10 ms.
func TestSummaryPercentiles(t *testing.T) {
	corrected, uncorrected := newHistogram(), newHistogram()
	for us := int64(1); us <= 10_000; us++ {
		_ = corrected.RecordValue(us)
		_ = uncorrected.RecordValue(us / 2)
	}
	r := &Result{
		LoadModel: "open", URL: "http://127.0.0.1:1/", Arrival: "poisson",
		Rate:      RateResult{Target: 100, Achieved: 100},
		corrected: corrected, uncorrected: uncorrected, slip: newHistogram(),
	}
	var b strings.Builder
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasSuffix(f[0], "%") {
			rows = append(rows, f)
		}
	}
	want := []string{"50.000%", "75.000%", "90.000%", "95.000%", "99.000%", "99.900%", "99.990%"}
	if len(rows) != len(want) {
		t.Fatalf("%d percentile rows, want %d:\n%s", len(rows), len(want), b.String())
	}
	for i, row := range rows {
		if row[0] != want[i] {
			t.Errorf("row %d is %s, want %s", i, row[0], want[i])
		}
		p, _ := strconv.ParseFloat(strings.TrimSuffix(row[0], "%"), 64)
		c, _ := strconv.ParseFloat(row[1], 64)
		u, _ := strconv.ParseFloat(row[2], 64)
		if exp := p / 10; c < exp*0.99 || c > exp*1.01 || u < exp/2*0.99 || u > exp/2*1.01 {
			t.Errorf("%s: corrected %v ms, uncorrected %v ms; want about %v and %v", row[0], c, u, exp, exp/2)
		}
	}
}

// TestSummaryLeavesJSONAlone: the percentiles are the summary's only; the
// result JSON carries the histograms and no percentile field.
func TestSummaryLeavesJSONAlone(t *testing.T) {
	b, err := json.Marshal(&Result{})
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	want := []string{"engine", "load_model", "arrival", "url", "rate", "window", "requests",
		"errors", "error_kinds", "histograms", "generator", "interrupted", "wire_sent_bytes", "wire_received_bytes"}
	if len(top) != len(want) {
		t.Errorf("result JSON has %d fields, want %d: %s", len(top), len(want), b)
	}
	for _, k := range want {
		if _, ok := top[k]; !ok {
			t.Errorf("result JSON lacks %q: %s", k, b)
		}
	}
}
