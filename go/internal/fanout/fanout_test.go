package fanout

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/expect"
	"github.com/patternbench/patternbench/go/internal/latencysim"
)

// startSim serves one in-process simulator replica per call of Handler, all
// with the same latencysim command line, and returns their base URLs.
func startSim(t *testing.T, replicas int, args ...string) []string {
	t.Helper()
	cfg, err := latencysim.ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	sim := latencysim.New(cfg)
	urls := make([]string, replicas)
	for i := range urls {
		srv := httptest.NewServer(sim.Handler(i))
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	return urls
}

// startService serves a fan-out Service built from cfg.
func startService(t *testing.T, cfg Config) (*Service, string) {
	t.Helper()
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1024
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return svc, srv.URL
}

type answer struct {
	ItemID   string                     `json:"item_id"`
	Parts    map[string]json.RawMessage `json:"parts"`
	Missing  []missing                  `json:"missing"`
	Degraded bool                       `json:"degraded"`
}

type missing struct {
	Backend string `json:"backend"`
	Reason  string `json:"reason"`
}

func getCatalog(t *testing.T, base, item string) (answer, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(base + "/catalog/" + item)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	elapsed := time.Since(start)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a, elapsed
}

// metric reads one series (name plus its label set as printed) from /metrics.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in %s/metrics", series, base)
	return 0
}

// eventually waits up to 2 s for a metric to reach want: cancelled attempts
// are counted by goroutines that may finish after the answer was sent.
func eventually(t *testing.T, base, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := metric(t, base, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func part(backend, item string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"backend":"%s","item_id":"%s","value":%d}`, backend, item, latencysim.Value(backend, item)))
}

func TestFullAnswer(t *testing.T) {
	sim := startSim(t, 2, "--median-ms", "1")
	_, base := startService(t, Config{Replicas: sim, Fanout: 4, CallTimeout: time.Second, Deadline: 2 * time.Second})
	for range 2 { // both replicas, by round robin
		a, _ := getCatalog(t, base, "sku-42")
		want := answer{ItemID: "sku-42", Parts: map[string]json.RawMessage{}, Missing: []missing{}}
		for _, b := range Backends[:4] {
			want.Parts[b] = part(b, "sku-42")
		}
		if !reflect.DeepEqual(a, want) {
			t.Errorf("got %+v\nwant %+v", a, want)
		}
	}
	if got := metric(t, base, `fanout_requests_total{code="200"}`); got != 2 {
		t.Errorf("fanout_requests_total{code=200} = %v, want 2", got)
	}
	if got := metric(t, base, `fanout_backend_calls_total{backend="reviews",outcome="ok"}`); got != 2 {
		t.Errorf("reviews ok calls = %v, want 2", got)
	}
}

func TestSlowBackendTimesOut(t *testing.T) {
	sim := startSim(t, 1, "--median-ms", "0", "--overrides", `{"inventory":{"median_ms":5000}}`)
	_, base := startService(t, Config{Replicas: sim, Fanout: 2, CallTimeout: 50 * time.Millisecond, Deadline: time.Second})
	a, elapsed := getCatalog(t, base, "x")
	if want := []missing{{"inventory", "timeout"}}; !reflect.DeepEqual(a.Missing, want) || !a.Degraded || len(a.Parts) != 1 {
		t.Errorf("got %+v, want pricing only and missing %v", a, want)
	}
	if elapsed > 500*time.Millisecond {
		t.Errorf("answer took %v with a 50 ms call timeout", elapsed)
	}
	if got := metric(t, base, `fanout_timeouts_total{backend="inventory"}`); got != 1 {
		t.Errorf("fanout_timeouts_total{inventory} = %v, want 1", got)
	}
	if got := metric(t, base, `fanout_backend_calls_total{backend="inventory",outcome="timeout"}`); got != 1 {
		t.Errorf("inventory timeout attempts = %v, want 1", got)
	}
}

func TestFailingBackendIsAnError(t *testing.T) {
	sim := startSim(t, 1, "--median-ms", "0", "--overrides", `{"pricing":{"error_rate":1}}`)
	_, base := startService(t, Config{Replicas: sim, Fanout: 2, CallTimeout: time.Second, Deadline: time.Second})
	a, _ := getCatalog(t, base, "x")
	if want := []missing{{"pricing", "error"}}; !reflect.DeepEqual(a.Missing, want) || !a.Degraded {
		t.Errorf("got %+v, want missing %v", a, want)
	}
	if got := metric(t, base, `fanout_timeouts_total{backend="pricing"}`); got != 0 {
		t.Errorf("an error counted as a timeout: %v", got)
	}
}

func TestNonObjectBodyIsAnError(t *testing.T) {
	for _, body := range []string{`[1,2]`, `"x"`, `{"truncated":`, ``, "{\"bad utf-8\":\"\xff\"}", `{"n":NaN}`} {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, body)
		}))
		_, base := startService(t, Config{Replicas: []string{backend.URL}, Fanout: 1, CallTimeout: time.Second, Deadline: time.Second})
		a, _ := getCatalog(t, base, "x")
		if want := []missing{{"pricing", "error"}}; !reflect.DeepEqual(a.Missing, want) {
			t.Errorf("body %q: got %+v, want missing %v", body, a, want)
		}
		backend.Close()
	}
}

// TestHedgeWinsOverSlowPrimary: replica 0 is slow, replica 1 fast; the first
// request's primary is replica 0, so the hedge must answer and the primary
// must be cancelled, all the way to the simulator.
func TestHedgeWinsOverSlowPrimary(t *testing.T) {
	slow := startSim(t, 1, "--median-ms", "5000")
	fast := startSim(t, 1, "--median-ms", "0")
	_, base := startService(t, Config{Replicas: []string{slow[0], fast[0]}, Fanout: 1,
		CallTimeout: 10 * time.Second, Deadline: 10 * time.Second, HedgeDelay: 20 * time.Millisecond})
	a, elapsed := getCatalog(t, base, "sku-42")
	if a.Degraded || !reflect.DeepEqual(a.Parts["pricing"], part("pricing", "sku-42")) {
		t.Fatalf("got %+v, want the hedge's answer", a)
	}
	if elapsed > time.Second {
		t.Errorf("hedged answer took %v", elapsed)
	}
	if got := metric(t, base, `fanout_hedges_total{backend="pricing"}`); got != 1 {
		t.Errorf("fanout_hedges_total = %v, want 1", got)
	}
	eventually(t, base, `fanout_backend_calls_total{backend="pricing",outcome="cancelled"}`, 1)
	eventually(t, base, `fanout_backend_calls_total{backend="pricing",outcome="ok"}`, 1)
	eventually(t, slow[0], `latencysim_requests_total{outcome="cancelled",replica="0"}`, 1)
}

// TestHedgeFailureDoesNotEndTheCall: the hedge fails at once while the slower
// primary still answers in time.
func TestHedgeFailureDoesNotEndTheCall(t *testing.T) {
	primary := startSim(t, 1, "--median-ms", "80")
	failing := startSim(t, 1, "--median-ms", "0", "--error-rate", "1")
	_, base := startService(t, Config{Replicas: []string{primary[0], failing[0]}, Fanout: 1,
		CallTimeout: time.Second, Deadline: time.Second, HedgeDelay: 10 * time.Millisecond})
	a, _ := getCatalog(t, base, "x")
	if a.Degraded {
		t.Fatalf("got %+v, want the primary's answer", a)
	}
	if got := metric(t, base, `fanout_backend_calls_total{backend="pricing",outcome="error"}`); got != 1 {
		t.Errorf("error attempts = %v, want 1 (the hedge)", got)
	}
}

// TestFailureBeforeHedgeEndsTheCall: a hedge is not a retry.
func TestFailureBeforeHedgeEndsTheCall(t *testing.T) {
	failing := startSim(t, 1, "--median-ms", "0", "--error-rate", "1")
	fast := startSim(t, 1, "--median-ms", "0")
	_, base := startService(t, Config{Replicas: []string{failing[0], fast[0]}, Fanout: 1,
		CallTimeout: time.Second, Deadline: time.Second, HedgeDelay: 100 * time.Millisecond})
	a, elapsed := getCatalog(t, base, "x")
	if want := []missing{{"pricing", "error"}}; !reflect.DeepEqual(a.Missing, want) {
		t.Errorf("got %+v, want missing %v", a, want)
	}
	if elapsed > 80*time.Millisecond {
		t.Errorf("the call waited %v, as if for the hedge", elapsed)
	}
	if got := metric(t, base, `fanout_hedges_total{backend="pricing"}`); got != 0 {
		t.Errorf("fanout_hedges_total = %v, want 0", got)
	}
}

// TestDeadlineCancelsStragglers: the call timeout is generous, the request
// deadline is not; the answer comes at the deadline and the backends see the
// cancellation.
func TestDeadlineCancelsStragglers(t *testing.T) {
	sim := startSim(t, 1, "--median-ms", "0", "--overrides", `{"inventory":{"median_ms":5000},"reviews":{"median_ms":5000}}`)
	_, base := startService(t, Config{Replicas: sim, Fanout: 3, CallTimeout: 10 * time.Second, Deadline: 60 * time.Millisecond})
	a, elapsed := getCatalog(t, base, "x")
	if want := []missing{{"inventory", "timeout"}, {"reviews", "timeout"}}; !reflect.DeepEqual(a.Missing, want) || len(a.Parts) != 1 {
		t.Errorf("got %+v, want pricing only and missing %v", a, want)
	}
	if elapsed < 60*time.Millisecond || elapsed > 500*time.Millisecond {
		t.Errorf("answer after %v, want just after the 60 ms deadline", elapsed)
	}
	for _, b := range []string{"inventory", "reviews"} {
		// Cut off by the deadline, not by their own timer: cancelled attempts,
		// timed-out parts.
		eventually(t, base, `fanout_backend_calls_total{backend="`+b+`",outcome="cancelled"}`, 1)
		if got := metric(t, base, `fanout_timeouts_total{backend="`+b+`"}`); got != 1 {
			t.Errorf("fanout_timeouts_total{%s} = %v, want 1", b, got)
		}
	}
	eventually(t, sim[0], `latencysim_requests_total{outcome="cancelled",replica="0"}`, 2)
}

func TestErrorEnvelopes(t *testing.T) {
	sim := startSim(t, 1, "--median-ms", "0")
	_, base := startService(t, Config{Replicas: sim, Fanout: 1, CallTimeout: time.Second, Deadline: time.Second})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/catalog/sku%2142", 400, "invalid_argument"},
		{"GET", "/catalog/" + strings.Repeat("x", 65), 400, "invalid_argument"},
		{"GET", "/catalog/", 400, "invalid_argument"},
		{"GET", "/catalog/a/b", 400, "invalid_argument"},
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/catalog", 404, "not_found"},
		{"POST", "/catalog/sku-42", 405, "method_not_allowed"},
		{"DELETE", "/catalog/sku-42", 405, "method_not_allowed"},
		{"POST", "/healthz", 405, "method_not_allowed"},
		{"PUT", "/metrics", 405, "method_not_allowed"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Error struct{ Code, Message string }
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || env.Error.Code != tc.code || env.Error.Message == "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: status %d, body %+v (%v), want %d %s", tc.method, tc.path, resp.StatusCode, env, err, tc.status, tc.code)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q, want GET", tc.method, tc.path, resp.Header.Get("Allow"))
		}
	}
	for code, want := range map[string]float64{"400": 4, "404": 2, "405": 4} {
		if got := metric(t, base, `fanout_requests_total{code="`+code+`"}`); got != want {
			t.Errorf("fanout_requests_total{code=%s} = %v, want %v", code, got, want)
		}
	}
}

func TestOverloaded(t *testing.T) {
	sim := startSim(t, 1, "--median-ms", "300")
	svc, base := startService(t, Config{Replicas: sim, Fanout: 1, CallTimeout: time.Second, Deadline: time.Second, MaxInFlight: 1})
	first := make(chan struct{})
	go func() {
		defer close(first)
		if resp, err := http.Get(base + "/catalog/a"); err == nil {
			_ = resp.Body.Close()
		}
	}()
	for svc.lim.inFlight.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	if got := metric(t, base, "fanout_in_flight"); got != 1 {
		t.Errorf("fanout_in_flight = %v, want 1", got)
	}
	resp, err := http.Get(base + "/catalog/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(string(body), `"code":"overloaded"`) {
		t.Errorf("got %d Retry-After %q %s, want 503 overloaded", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	<-first
	if got := metric(t, base, `fanout_requests_total{code="503"}`); got != 1 {
		t.Errorf("fanout_requests_total{code=503} = %v, want 1", got)
	}
}

func TestHealthz(t *testing.T) {
	_, base := startService(t, Config{Replicas: []string{"http://127.0.0.1:9"}, Fanout: 1})
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestMetricsFollowTheContract(t *testing.T) {
	_, base := startService(t, Config{Replicas: []string{"http://127.0.0.1:9"}, Fanout: 2})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		"# TYPE fanout_requests_total counter",
		"# TYPE fanout_request_duration_seconds histogram",
		"# TYPE fanout_backend_calls_total counter",
		"# TYPE fanout_hedges_total counter",
		"# TYPE fanout_timeouts_total counter",
		"# TYPE fanout_in_flight gauge",
		`fanout_backend_calls_total{backend="inventory",outcome="cancelled"} 0`,
		`fanout_hedges_total{backend="pricing"} 0`,
		`fanout_timeouts_total{backend="inventory"} 0`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var les []string
	for _, line := range strings.Split(string(text), "\n") {
		if rest, ok := strings.CutPrefix(line, `fanout_request_duration_seconds_bucket{le="`); ok {
			les = append(les, rest[:strings.IndexByte(rest, '"')])
		}
	}
	want := []string{"0.0005", "0.001", "0.002", "0.003", "0.005", "0.0075", "0.01", "0.015", "0.02", "0.03", "0.05", "0.075", "0.1", "0.125", "0.15", "0.2", "0.25", "0.5", "1", "2.5", "+Inf"}
	if !reflect.DeepEqual(les, want) {
		t.Errorf("buckets %v, want %v", les, want)
	}
}

// vectors is systems/fanout/vectors.json.
type vectors struct {
	Params struct {
		Fanout           int     `json:"fanout"`
		BackendDist      string  `json:"backend_dist"`
		BackendMedianMs  float64 `json:"backend_median_ms"`
		BackendSigma     float64 `json:"backend_sigma"`
		BackendTailP     float64 `json:"backend_tail_p"`
		BackendTailMs    float64 `json:"backend_tail_ms"`
		BackendErrorRate float64 `json:"backend_error_rate"`
		BackendOverrides string  `json:"backend_overrides"`
		CallTimeoutMs    int     `json:"call_timeout_ms"`
		DeadlineMs       int     `json:"deadline_ms"`
		HedgeDelayMs     int     `json:"hedge_delay_ms"`
	} `json:"params"`
	Cases []struct {
		Name    string `json:"name"`
		Request struct {
			Method string `json:"method"`
			Path   string `json:"path"`
		} `json:"request"`
		Expect struct {
			Status int `json:"status"`
			Body   any `json:"body"`
		} `json:"expect"`
	} `json:"cases"`
}

// TestVectors runs the conformance vectors the harness checks before timing:
// the simulator and the service start with the vectors' params.
func TestVectors(t *testing.T) {
	raw, err := os.ReadFile("../../../systems/fanout/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	p := v.Params
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	sim := startSim(t, 2, "--seed", "1", "--dist", p.BackendDist, "--median-ms", f(p.BackendMedianMs),
		"--sigma", f(p.BackendSigma), "--tail-p", f(p.BackendTailP), "--tail-ms", f(p.BackendTailMs),
		"--error-rate", f(p.BackendErrorRate), "--overrides", p.BackendOverrides)
	_, base := startService(t, Config{Replicas: sim, Fanout: p.Fanout,
		CallTimeout: time.Duration(p.CallTimeoutMs) * time.Millisecond,
		Deadline:    time.Duration(p.DeadlineMs) * time.Millisecond,
		HedgeDelay:  time.Duration(p.HedgeDelayMs) * time.Millisecond})
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range v.Cases {
		if c.Request.Path == "" { // a raw case (malformed HTTP): the scaffold answers it, see serve
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(c.Request.Method, base+c.Request.Path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.Expect.Status || !expect.Match(c.Expect.Body, got) {
				t.Errorf("got %d %v\nwant %d %v", resp.StatusCode, got, c.Expect.Status, c.Expect.Body)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	const reps = "http://127.0.0.1:9101,http://127.0.0.1:9102"
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // a flag name; "" for success
	}{
		{"minimal", []string{"--replicas", "http://127.0.0.1:9101"}, ""},
		{"everything", []string{"--listen", "127.0.0.1:0", "--replicas", reps + "/", "--fanout", "8",
			"--call-timeout-ms", "0", "--deadline-ms", "10", "--hedge-delay-ms", "5", "--max-in-flight", "1"}, ""},
		{"replicas missing", nil, "--replicas"},
		{"replica not a URL", []string{"--replicas", "127.0.0.1:9101"}, "--replicas"},
		{"replica empty", []string{"--replicas", "http://127.0.0.1:9101,"}, "--replicas"},
		{"replica with a query", []string{"--replicas", "http://127.0.0.1:9101/?x=1"}, "--replicas"},
		{"fanout 0", []string{"--replicas", reps, "--fanout", "0"}, "--fanout"},
		{"fanout 9", []string{"--replicas", reps, "--fanout", "9"}, "--fanout"},
		{"fanout not a number", []string{"--replicas", reps, "--fanout", "four"}, "fanout"},
		{"negative call timeout", []string{"--replicas", reps, "--call-timeout-ms", "-1"}, "--call-timeout-ms"},
		{"negative deadline", []string{"--replicas", reps, "--deadline-ms", "-1"}, "--deadline-ms"},
		{"negative hedge delay", []string{"--replicas", reps, "--hedge-delay-ms", "-1"}, "--hedge-delay-ms"},
		{"hedge with one replica", []string{"--replicas", "http://127.0.0.1:9101", "--hedge-delay-ms", "5"}, "--hedge-delay-ms"},
		{"max-in-flight 0", []string{"--replicas", reps, "--max-in-flight", "0"}, "--max-in-flight"},
		{"negative max lag", []string{"--replicas", reps, "--max-lag-ms", "-1"}, "--max-lag-ms"},
		{"unknown flag", []string{"--replicas", reps, "--hedge", "5"}, "hedge"},
		{"stray argument", []string{"--replicas", reps, "extra"}, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseFlags(tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr == "" && (cfg.Replicas[0] != "http://127.0.0.1:9101"):
				t.Fatalf("replica %q kept its trailing slash", cfg.Replicas[0])
			case tc.wantErr != "" && err == nil:
				t.Fatalf("no error, want one naming %s", tc.wantErr)
			case err != nil && (!strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("error %q: want one line naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := ParseFlags([]string{"--replicas", "http://127.0.0.1:9101"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Listen: "127.0.0.1:8080", Replicas: []string{"http://127.0.0.1:9101"}, Fanout: 4,
		CallTimeout: 100 * time.Millisecond, Deadline: 250 * time.Millisecond,
		MaxInFlight: DefaultMaxInFlight, MaxLag: DefaultMaxLagMs * time.Millisecond}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

// Example shows a degraded answer: one backend fails, so its part is listed
// under "missing" and the rest still arrive, in one 200.
func Example() {
	simCfg, _ := latencysim.ParseFlags([]string{"--median-ms", "0", "--overrides", `{"inventory":{"error_rate":1}}`})
	sim := httptest.NewServer(latencysim.New(simCfg).Handler(0))
	defer sim.Close()
	svc, _ := New(Config{Replicas: []string{sim.URL}, Fanout: 2, CallTimeout: time.Second, Deadline: time.Second, MaxInFlight: 8})
	defer svc.Close()
	srv := httptest.NewServer(svc)
	defer srv.Close()

	resp, _ := http.Get(srv.URL + "/catalog/sku-42")
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"item_id":"sku-42","parts":{"pricing":{"backend":"pricing","item_id":"sku-42","value":77936}},"missing":[{"backend":"inventory","reason":"error"}],"degraded":true}
}
