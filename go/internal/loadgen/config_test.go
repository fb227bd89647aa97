package loadgen

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := ParseFlags([]string{"--url", "http://127.0.0.1:8082/catalog/sku-{rand:1000}", "--rate", "1000", "--duration", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rate != 1000 || cfg.Duration != 10*time.Second || cfg.Warmup != 0 || cfg.Arrival != ArrivalConstant ||
		cfg.Seed != 1 || cfg.MaxInFlight != 4096 || cfg.Timeout != 10*time.Second || cfg.Method != "GET" {
		t.Errorf("defaults: %+v", cfg)
	}
	tm := cfg.target
	if tm.scheme != schemeHTTP || tm.host != "127.0.0.1:8082" || tm.space != 1000 {
		t.Errorf("template %+v", tm)
	}
	if got := tm.render(nil, 42); got != "/catalog/sku-42" {
		t.Errorf("render(42) = %q", got)
	}
}

func TestParseFlagsAll(t *testing.T) {
	cfg, err := ParseFlags([]string{
		"--url", "http://localhost:80", "--rate", "2.5", "--duration", "1m", "--warmup", "5s",
		"--arrival", "poisson", "--seed", "7", "--max-in-flight", "8", "--timeout", "250ms",
		"--method", "POST", "--body", `{"a":1}`, "--header", "Content-Type: application/json",
		"--header", "X-Trace:abc", "--json", "out.json", "--quiet",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"Content-Type", "application/json"}, {"X-Trace", "abc"}}
	if cfg.Rate != 2.5 || cfg.Warmup != 5*time.Second || cfg.Arrival != ArrivalPoisson || cfg.Seed != 7 ||
		cfg.MaxInFlight != 8 || cfg.Timeout != 250*time.Millisecond || cfg.Method != "POST" ||
		cfg.Body != `{"a":1}` || len(cfg.Headers) != 2 || cfg.Headers[0] != want[0] || cfg.Headers[1] != want[1] ||
		cfg.JSONPath != "out.json" || !cfg.Quiet {
		t.Errorf("parsed %+v", cfg)
	}
	if got := cfg.target.render(nil, 0); got != "/" {
		t.Errorf("an empty path renders as %q, want /", got)
	}

	g, err := ParseFlags([]string{"--url", "grpc://127.0.0.1:9000", "--rate", "10", "--duration", "1s",
		"--grpc-method", "/grpc.health.v1.Health/Check", "--grpc-request-base64", "CgNmb28=", "--grpc-conns", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if g.target.scheme != schemeGRPC || string(g.GRPCRequest) != "\x0a\x03foo" || g.GRPCConns != 2 ||
		g.GRPCStream || g.GRPCVary != nil || g.space != 1 {
		t.Errorf("grpc config %+v", g)
	}

	v, err := ParseFlags([]string{"--url", "grpc://127.0.0.1:9000", "--rate", "10", "--duration", "1s",
		"--grpc-method", "/a.B/C", "--grpc-stream", "--grpc-vary", "1:string:user-{rand:1000}",
		"--grpc-vary", "2:varint:{rand:7}", "--grpc-vary", "536870911:varint:18446744073709551615",
		"--grpc-vary", "3:string:a:b"})
	if err != nil {
		t.Fatal(err)
	}
	wantVary := []GRPCVary{{1, VaryString, "user-{rand:1000}"}, {2, VaryVarint, "{rand:7}"},
		{536870911, VaryVarint, "18446744073709551615"}, {3, VaryString, "a:b"}}
	if !v.GRPCStream || !reflect.DeepEqual(v.GRPCVary, wantVary) || v.space != 7000 || len(v.vary) != 4 {
		t.Errorf("grpc config %+v", v)
	}

	b, err := ParseFlags([]string{"--url", "http://127.0.0.1:9000/u{rand:10}", "--rate", "10", "--duration", "1s",
		"--method", "POST", "--body", `{"id":"{rand:100}"}`})
	if err != nil {
		t.Fatal(err)
	}
	if b.space != 1000 || b.body.space != 100 {
		t.Errorf("body config %+v", b)
	}
}

// Every bad command line is refused with one line that names the flag.
func TestParseFlagsErrors(t *testing.T) {
	base := []string{"--url", "http://127.0.0.1:1/", "--rate", "10", "--duration", "1s"}
	grpcBase := []string{"--url", "grpc://127.0.0.1:1", "--rate", "10", "--duration", "1s", "--grpc-method", "/a.B/C"}
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--rate", "10", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/", "--duration", "1s"}, "--rate"},
		{[]string{"--url", "http://127.0.0.1:1/", "--rate", "10"}, "--duration"},
		{append(base, "--rate", "0"), "--rate"},
		{append(base, "--rate", "-3"), "--rate"},
		{append(base, "--rate", "NaN"), "--rate"},
		{append(base, "--rate", "fast"), "-rate"},
		{append(base, "--rate", "1e13"), "--rate"},
		{append(base, "--duration", "0s"), "--duration"},
		{append(base, "--duration", "10"), "-duration"},
		{append(base, "--warmup", "-1s"), "--warmup"},
		{append(base, "--arrival", "bursty"), "--arrival"},
		{append(base, "--max-in-flight", "0"), "--max-in-flight"},
		{append(base, "--timeout", "-1s"), "--timeout"},
		{append(base, "--method", "GE T"), "--method"},
		{append(base, "--header", "no colon"), "-header"},
		{append(base, "--header", ": empty key"), "-header"},
		{append(base, "--grpc-method", "/a.B/C"), "--grpc-method"},
		{append(base, "--grpc-conns", "2"), "--grpc-conns"},
		{append(base, "--nonsense"), "-nonsense"},
		{append(base, "extra"), `"extra"`},
		{[]string{"--url", "https://127.0.0.1:1/", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1/", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:0}", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:x}", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:5..4}", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:..4}", "--rate", "1", "--duration", "1s"}, "--url"},
		{append(grpcBase, "--grpc-vary", "2:varint:{rand:1..7}"), "--grpc-vary"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:5", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.{rand:9}:1/", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:4294967296}/{rand:4294967296}", "--rate", "1", "--duration", "1s"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:1/a b", "--rate", "1", "--duration", "1s"}, "--url"},
		{append(grpcBase[:6:6], "--grpc-method", "Check"), "--grpc-method"},
		{grpcBase[:6:6], "--grpc-method"},
		{append(grpcBase, "--grpc-request-base64", "!!"), "--grpc-request-base64"},
		{append(grpcBase, "--grpc-conns", "0"), "--grpc-conns"},
		{append(grpcBase, "--method", "POST"), "--method"},
		{append(grpcBase, "--header", "A: b"), "--header"},
		{[]string{"--url", "grpc://127.0.0.1:1/pkg.Svc", "--rate", "1", "--duration", "1s", "--grpc-method", "/a.B/C"}, "--url"},
		{append(base, "--body", "{rand:0}"), "--body"},
		{append(base, "--body", "{rand:9"), "--body"},
		{[]string{"--url", "http://127.0.0.1:1/{rand:4294967296}", "--rate", "1", "--duration", "1s", "--body", "{rand:4294967296}"}, "--body"},
		{append(base, "--grpc-vary", "1:string:x"), "--grpc-vary"},
		{append(base, "--grpc-stream"), "--grpc-stream"},
		{append(grpcBase, "--body", "x"), "--body"},
		{append(grpcBase, "--grpc-vary", "0:string:x"), "--grpc-vary: field number must be 1..536870911"},
		{append(grpcBase, "--grpc-vary", "536870912:string:x"), "--grpc-vary: field number must be 1..536870911"},
		{append(grpcBase, "--grpc-vary", "x:string:y"), "--grpc-vary: field number must be 1..536870911"},
		{append(grpcBase, "--grpc-vary", "1:string"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:float:1.5"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:string:{rand:0}"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:varint:a{rand:3}"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:varint:{rand:3}{rand:3}"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:varint:-1"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:varint:"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:string:a", "--grpc-vary", "1:string:b"), "--grpc-vary"},
		{append(grpcBase, "--grpc-vary", "1:string:{rand:4294967296}", "--grpc-vary", "2:varint:{rand:4294967296}"), "--grpc-vary"},
	}
	for _, c := range cases {
		_, err := ParseFlags(c.args)
		if err == nil {
			t.Errorf("%q: accepted", c.args)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.flag) || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q does not name %s on one line", c.args, msg, c.flag)
		}
	}
}

// Several placeholders take independent digits of one draw: every
// combination appears exactly once over the whole space.
func TestTemplateMixedRadix(t *testing.T) {
	tm, err := parseTemplate("http://h:1/a{rand:3}/b{rand:4}?c={rand:2}")
	if err != nil {
		t.Fatal(err)
	}
	if tm.space != 24 {
		t.Fatalf("space %d, want 24", tm.space)
	}
	seen := map[string]bool{}
	for d := range tm.space {
		seen[tm.render(nil, d)] = true
	}
	if len(seen) != 24 || !seen["/a2/b3?c=1"] || !seen["/a0/b0?c=0"] {
		t.Errorf("renders %v", seen)
	}
}
