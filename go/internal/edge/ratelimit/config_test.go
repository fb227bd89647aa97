package ratelimit

import (
	"flag"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Config
	RegisterFlags(fs, &c)
	want := Config{Store: StoreMemory, RedisAddr: DefaultRedisAddr, RedisTimeout: 50 * time.Millisecond, FailOpen: true}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	err := fs.Parse([]string{"--rate-limit-rps", "2.5", "--rate-limit-burst", "7", "--rate-limit-store", "redis",
		"--redis", "10.0.0.1:6380", "--redis-timeout-ms", "20", "--rate-limit-fail", "closed"})
	if err != nil {
		t.Fatal(err)
	}
	want = Config{RPS: 2.5, Burst: 7, Store: StoreRedis, RedisAddr: "10.0.0.1:6380", RedisTimeout: 20 * time.Millisecond}
	if c != want {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	for _, bad := range [][]string{{"--rate-limit-fail", "ajar"}, {"--redis-timeout-ms", "1.5"}} {
		if err := fs.Parse(bad); err == nil || !strings.Contains(err.Error(), bad[0][2:]) {
			t.Errorf("%v: error %v, want one naming the flag", bad, err)
		}
	}
}

func TestBurstDefault(t *testing.T) {
	for _, tc := range []struct {
		rps   float64
		burst int
	}{{0.5, 1}, {10, 1}, {11, 2}, {1000, 100}} {
		if got := (Config{RPS: tc.rps}).burst(); got != tc.burst {
			t.Errorf("rps %g: burst %d, want %d", tc.rps, got, tc.burst)
		}
	}
	if got := (Config{RPS: 1000, Burst: 3}).burst(); got != 3 {
		t.Errorf("an explicit burst became %d", got)
	}
}

func TestNewOff(t *testing.T) {
	if l, err := New(Config{}, prometheus.NewRegistry()); l != nil || err != nil {
		t.Fatalf("New(RPS 0) = %v, %v; want nil, nil", l, err)
	}
}

func TestNewRefuses(t *testing.T) {
	redis := Config{RPS: 1, Store: StoreRedis, RedisAddr: "127.0.0.1:6379", RedisTimeout: time.Millisecond}
	with := func(edit func(*Config)) Config { c := redis; edit(&c); return c }
	cases := []struct {
		name string
		c    Config
		want string
	}{
		{"negative rps", Config{RPS: -1, Store: StoreMemory}, "--rate-limit-rps: "},
		{"nan rps", Config{RPS: math.NaN(), Store: StoreMemory}, "--rate-limit-rps: "},
		{"inf rps", Config{RPS: math.Inf(1), Store: StoreMemory}, "--rate-limit-rps: "},
		{"negative burst", Config{RPS: 1, Burst: -1, Store: StoreMemory}, "--rate-limit-burst: "},
		{"endless refill", Config{RPS: 1e-9, Burst: 10, Store: StoreMemory}, "--rate-limit-burst: "},
		{"store", Config{RPS: 1, Store: "etcd"}, "--rate-limit-store: "},
		{"redis addr", with(func(c *Config) { c.RedisAddr = "localhost" }), "--redis: "},
		{"redis timeout", with(func(c *Config) { c.RedisTimeout = 0 }), "--redis-timeout-ms: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.c, nil)
			if err == nil || l != nil {
				t.Fatalf("New = %v, %v; want an error", l, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q, want one line starting %q", msg, tc.want)
			}
		})
	}
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, err := New(Config{RPS: 1, Store: StoreMemory}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l2, err := New(Config{RPS: 1, Store: StoreMemory}, reg); err == nil {
		l2.Close()
		t.Fatal("a second Limiter registered the same series")
	}
}

// counterValue is a counter's value in reg, 0 when the series does not exist.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
