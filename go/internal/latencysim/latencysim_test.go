package latencysim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		name, item string
		want       uint32
	}{
		{"pricing", "sku-42", 77936},
		{"inventory", "sku-42", 36190},
		{"reviews", "sku-42", 45469},
		{"promotions", "sku-42", 70738},
		{"pricing", "A", 94661},
	} {
		if got := Value(tc.name, tc.item); got != tc.want {
			t.Errorf("Value(%q, %q) = %d, want %d", tc.name, tc.item, got, tc.want)
		}
	}
}

// ExampleValue shows the payload rule every backend follows, which is what
// lets the conformance vectors fix exact answers.
func ExampleValue() {
	fmt.Println(Value("pricing", "sku-42"), Value("inventory", "sku-42"))
	// Output: 77936 36190
}

func TestSample(t *testing.T) {
	const n = 20001
	for _, tc := range []struct {
		name       string
		d          Dist
		wantMedian time.Duration // of the n draws, within 5%
		wantFails  int           // -1: between 40% and 60% of n
	}{
		{"constant", Dist{Kind: DistConstant, MedianMs: 3}, 3 * time.Millisecond, 0},
		{"constant ignores sigma", Dist{Kind: DistConstant, MedianMs: 3, Sigma: 2}, 3 * time.Millisecond, 0},
		{"lognormal sigma 0 is constant", Dist{Kind: DistLognormal, MedianMs: 7}, 7 * time.Millisecond, 0},
		{"lognormal keeps its median", Dist{Kind: DistLognormal, MedianMs: 10, Sigma: 1}, 10 * time.Millisecond, 0},
		{"certain tail adds tail-ms", Dist{Kind: DistConstant, MedianMs: 1, TailP: 1, TailMs: 50}, 51 * time.Millisecond, 0},
		{"always failing", Dist{Kind: DistConstant, ErrorRate: 1}, 0, n},
		{"half failing", Dist{Kind: DistConstant, ErrorRate: 0.5}, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 1))
			delays := make([]time.Duration, n)
			fails := 0
			for i := range delays {
				var fail bool
				delays[i], fail = tc.d.Sample(r)
				if fail {
					fails++
				}
			}
			slices.Sort(delays)
			med := delays[n/2]
			if diff := med - tc.wantMedian; diff < -tc.wantMedian/20 || diff > tc.wantMedian/20 {
				t.Errorf("median delay %v, want %v ± 5%%", med, tc.wantMedian)
			}
			if tc.wantFails >= 0 && fails != tc.wantFails || tc.wantFails < 0 && (fails < n*2/5 || fails > n*3/5) {
				t.Errorf("%d of %d draws failed, want %d (-1: about half)", fails, n, tc.wantFails)
			}
		})
	}
}

func TestSampleTailProbability(t *testing.T) {
	d := Dist{Kind: DistConstant, MedianMs: 1, TailP: 0.01, TailMs: 100}
	r := rand.New(rand.NewPCG(7, 7))
	slow := 0
	for range 100000 {
		if delay, _ := d.Sample(r); delay > 50*time.Millisecond {
			slow++
		}
	}
	if slow < 800 || slow > 1200 {
		t.Errorf("%d of 100000 draws in the tail, want about 1000", slow)
	}
}

func TestSampleIsReproducible(t *testing.T) {
	d := Dist{Kind: DistLognormal, MedianMs: 5, Sigma: 0.7, TailP: 0.1, TailMs: 30, ErrorRate: 0.1}
	a, b := rand.New(rand.NewPCG(42, 42)), rand.New(rand.NewPCG(42, 42))
	for i := range 1000 {
		da, fa := d.Sample(a)
		db, fb := d.Sample(b)
		if da != db || fa != fb {
			t.Fatalf("draw %d differs: (%v, %v) vs (%v, %v)", i, da, fa, db, fb)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // substring; "" for success
	}{
		{"defaults", nil, ""},
		{"two replicas", []string{"--listen", "127.0.0.1:0,127.0.0.1:0", "--seed", "9"}, ""},
		{"lognormal", []string{"--dist", "lognormal", "--median-ms", "2.5", "--sigma", "0.5", "--tail-p", "0.01", "--tail-ms", "200"}, ""},
		{"overrides", []string{"--overrides", `{"reviews":{"dist":"constant","median_ms":1000},"shipping":{"error_rate":1}}`}, ""},
		{"unknown dist", []string{"--dist", "uniform"}, "--dist"},
		{"negative median", []string{"--median-ms", "-1"}, "--median-ms"},
		{"negative sigma", []string{"--sigma", "-0.1"}, "--sigma"},
		{"tail-p above 1", []string{"--tail-p", "1.5"}, "--tail-p"},
		{"negative tail-ms", []string{"--tail-ms", "-3"}, "--tail-ms"},
		{"error-rate above 1", []string{"--error-rate", "2"}, "--error-rate"},
		{"error-rate not a number", []string{"--error-rate", "x"}, "error-rate"},
		{"empty listen address", []string{"--listen", "127.0.0.1:0,"}, "--listen"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"malformed overrides", []string{"--overrides", `{"reviews":`}, "--overrides"},
		{"overrides not an object", []string{"--overrides", `[1]`}, "--overrides"},
		{"overrides null", []string{"--overrides", `null`}, "--overrides"},
		{"overrides trailing data", []string{"--overrides", `{} {}`}, "--overrides"},
		{"override unknown backend", []string{"--overrides", `{"revews":{}}`}, "--overrides"},
		{"override unknown field", []string{"--overrides", `{"reviews":{"median":1}}`}, "--overrides"},
		{"override unknown dist", []string{"--overrides", `{"reviews":{"dist":"pareto"}}`}, "--overrides"},
		{"override negative value", []string{"--overrides", `{"reviews":{"tail_ms":-1}}`}, "--overrides"},
		{"override error_rate above 1", []string{"--overrides", `{"shipping":{"error_rate":1.5}}`}, "--overrides"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFlags(tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("no error, want one naming %s", tc.wantErr)
			case err != nil && (!strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("error %q: want one line naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestOverridesLayOverDefaults(t *testing.T) {
	cfg, err := ParseFlags([]string{"--dist", "lognormal", "--median-ms", "2", "--sigma", "0.3",
		"--overrides", `{"reviews":{"median_ms":1000},"shipping":{"error_rate":1}}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		backend string
		want    Dist
	}{
		{"pricing", Dist{Kind: DistLognormal, MedianMs: 2, Sigma: 0.3}},
		{"reviews", Dist{Kind: DistLognormal, MedianMs: 1000, Sigma: 0.3}},
		{"shipping", Dist{Kind: DistLognormal, MedianMs: 2, Sigma: 0.3, ErrorRate: 1}},
	} {
		if got := cfg.DistFor(tc.backend); got != tc.want {
			t.Errorf("DistFor(%q) = %+v, want %+v", tc.backend, got, tc.want)
		}
	}
}

func newTestSim(t *testing.T, args ...string) (*Sim, *httptest.Server) {
	t.Helper()
	cfg, err := ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim.Handler(0))
	t.Cleanup(srv.Close)
	return sim, srv
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// counter reads one series of latencysim_requests_total from /metrics.
func counter(t *testing.T, base, outcome string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	prefix := `latencysim_requests_total{outcome="` + outcome + `",replica="0"} `
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %q in /metrics", prefix)
	return 0
}

func TestHandler(t *testing.T) {
	_, srv := newTestSim(t, "--median-ms", "0", "--overrides", `{"shipping":{"error_rate":1}}`)
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/backend/pricing/sku-42", 200, `{"backend":"pricing","item_id":"sku-42","value":77936}`},
		{"/backend/anything_else/x", 200, `{"backend":"anything_else","item_id":"x","value":` + strconv.Itoa(int(Value("anything_else", "x"))) + `}`},
		{"/backend/shipping/sku-42", 500, `{"error":{"code":"internal","message":"injected backend error"}}`},
		{"/backend/pricing/sku%2142", 400, ""},
		{"/backend/pri.cing/sku-42", 400, ""},
		{"/backend/pricing/" + strings.Repeat("x", 65), 400, ""},
		{"/backend/pricing", 404, ""},
		{"/nope", 404, ""},
		{"/healthz", 200, `{"status":"ok"}`},
	} {
		status, body := get(t, srv.URL+tc.path)
		if status != tc.wantStatus {
			t.Errorf("GET %s: status %d, want %d", tc.path, status, tc.wantStatus)
		}
		if tc.wantBody != "" {
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.wantBody), &want); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(body) != fmt.Sprint(want) {
				t.Errorf("GET %s: body %v, want %v", tc.path, body, want)
			}
		} else if e, ok := body["error"].(map[string]any); !ok || e["code"] == "" || e["message"] == "" {
			t.Errorf("GET %s: body %v is not an error envelope", tc.path, body)
		}
	}
	if got := counter(t, srv.URL, OutcomeInvalid); got != 3 {
		t.Errorf("invalid requests counted %v, want 3", got)
	}
}

// TestHandlerStopsWaitingWhenCallerLeaves checks that a cancelled caller frees
// the simulator at once, which is what lets the fan-out service's deadline
// reach the backends.
func TestHandlerStopsWaitingWhenCallerLeaves(t *testing.T) {
	_, srv := newTestSim(t, "--median-ms", "5000")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/backend/pricing/sku-42", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request outlived its 50 ms context")
	}
	deadline := time.Now().Add(2 * time.Second)
	for counter(t, srv.URL, OutcomeCancelled) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the simulator did not count the cancelled request")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReplicasDrawFromTheirOwnSeededStreams(t *testing.T) {
	cfg, err := ParseFlags([]string{"--seed", "5", "--error-rate", "0.5", "--median-ms", "0"})
	if err != nil {
		t.Fatal(err)
	}
	pattern := func(sim *Sim, replica int) string {
		srv := httptest.NewServer(sim.Handler(replica))
		defer srv.Close()
		var b strings.Builder
		for range 32 {
			resp, err := http.Get(srv.URL + "/backend/pricing/x")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			b.WriteByte("01"[resp.StatusCode/500])
		}
		return b.String()
	}
	a0, b0, b1 := pattern(New(cfg), 0), pattern(New(cfg), 0), pattern(New(cfg), 1)
	if a0 != b0 {
		t.Errorf("replica 0 differs between runs: %s vs %s", a0, b0)
	}
	if a0 == b1 {
		t.Errorf("replicas 0 and 1 share a stream: %s", a0)
	}
}
