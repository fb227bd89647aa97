package edge

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := ParseFlags("edge", []string{"--core", "127.0.0.1:50051"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || cfg.MaxInFlight != 1024 || cfg.Budget != time.Second || cfg.Retries != 2 ||
		cfg.RetryBackoff != 5*time.Millisecond || cfg.RetryBackoffMax != 50*time.Millisecond || cfg.BreakerFailures != 20 ||
		cfg.BreakerOpen != time.Second || cfg.LogRequests || cfg.Trace != "none" || cfg.OTLPEndpoint != DefaultOTLPEndpoint ||
		cfg.TraceSample != 1 || cfg.Auth.Mode != "none" || cfg.RateLimit.RPS != 0 {
		t.Errorf("defaults %+v", cfg)
	}
	cfg, err = ParseFlags("edge", []string{"--core", "127.0.0.1:1", "--budget-ms", "250", "--log-requests", "--trace", "otlp",
		"--trace-sample", "0.5", "--retries", "0", "--rate-limit-rps", "100", "--auth", "hs256"})
	if err != nil || cfg.Budget != 250*time.Millisecond || !cfg.LogRequests || cfg.Trace != "otlp" || cfg.Retries != 0 ||
		cfg.RateLimit.RPS != 100 || cfg.Auth.Mode != "hs256" {
		t.Errorf("%+v %v", cfg, err)
	}
}

// A bad flag is one line naming it.
func TestParseFlagsErrors(t *testing.T) {
	core := []string{"--core", "127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{nil, "--core"},
		{[]string{"--core", "nope"}, "--core"},
		{append([]string{"--listen", "x"}, core...), "--listen"},
		{append([]string{"--budget-ms", "0"}, core...), "--budget-ms"},
		{append([]string{"--max-in-flight", "0"}, core...), "--max-in-flight"},
		{append([]string{"--retries", "11"}, core...), "--retries"},
		{append([]string{"--retry-backoff-ms", "0"}, core...), "--retry-backoff-ms"},
		{append([]string{"--retry-backoff-max-ms", "1"}, core...), "--retry-backoff-max-ms"},
		{append([]string{"--breaker-failures", "0"}, core...), "--breaker-failures"},
		{append([]string{"--breaker-open-ms", "0"}, core...), "--breaker-open-ms"},
		{append([]string{"--trace", "jaeger"}, core...), "--trace"},
		{append([]string{"--trace-sample", "2"}, core...), "--trace-sample"},
		{append([]string{"--trace", "otlp", "--otlp-endpoint", "127.0.0.1:4318"}, core...), "--otlp-endpoint"},
		{append([]string{"--auth", "basic"}, core...), "--auth"},
		{append([]string{"--rate-limit-rps", "5", "--rate-limit-store", "disk"}, core...), "--rate-limit-store"},
		{append([]string{"--nope"}, core...), "-nope"},
		{append([]string{"extra"}, core...), "extra"},
	} {
		_, err := ParseFlags("edge", tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming %s", tc.args, err, tc.flag)
		}
	}
}
