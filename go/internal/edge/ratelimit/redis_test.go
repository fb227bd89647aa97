package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis's log lines (one per failed dial while the server is down).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

// redisServer is a real redis-server on a free port of 127.0.0.1, without persistence.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

// startRedis starts one; it is killed when the test ends.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH; these tests need a real one (Debian: apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &redisServer{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !s.ping(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("redis-server on %s does not answer PING", s.addr)
		}
	}
}

func (s *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// stop kills the server by its PID (SIGKILL works on a stopped process too).
func (s *redisServer) stop() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *redisServer) signal(sig syscall.Signal) {
	if err := syscall.Kill(s.cmd.Process.Pid, sig); err != nil {
		s.t.Fatal(err)
	}
}

func newRedisLimiter(t *testing.T, addr string, c Config, reg prometheus.Registerer) Limiter {
	t.Helper()
	c.Store, c.RedisAddr = StoreRedis, addr
	if c.RedisTimeout == 0 {
		c.RedisTimeout = 100 * time.Millisecond
	}
	l, err := New(c, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestRedisRate calls as fast as it can for a second: the burst and about RPS·elapsed get through.
func TestRedisRate(t *testing.T) {
	srv := startRedis(t)
	const rps, burst = 100, 20
	l := newRedisLimiter(t, srv.addr, Config{RPS: rps, Burst: burst}, nil)
	allowed, start := 0, time.Now()
	for time.Since(start) < time.Second {
		d := l.Allow(context.Background(), "alice")
		switch {
		case d.StoreError:
			t.Fatalf("store error with redis up: %+v", d)
		case d.Allowed:
			allowed++
		case d.RetryAfter <= 0 || d.RetryAfter > 10*time.Millisecond:
			t.Fatalf("RetryAfter %v, want (0, 10ms] at %d a second", d.RetryAfter, rps)
		}
	}
	refill := rps * time.Since(start).Seconds()
	t.Logf("%d allowed in %v", allowed, time.Since(start))
	if lo, hi := burst+int(0.8*refill), burst+int(1.1*refill)+2; allowed < lo || allowed > hi {
		t.Fatalf("%d allowed in %v, want %d to %d", allowed, time.Since(start), lo, hi)
	}
}

// TestRedisSharedBucket: two edges on one redis spend the same bucket.
func TestRedisSharedBucket(t *testing.T) {
	srv := startRedis(t)
	cfg := Config{RPS: 0.001, Burst: 10}
	a := newRedisLimiter(t, srv.addr, cfg, prometheus.NewRegistry())
	b := newRedisLimiter(t, srv.addr, cfg, prometheus.NewRegistry())
	var got [2]int
	for i := range 30 {
		if [2]Limiter{a, b}[i%2].Allow(context.Background(), "shared").Allowed {
			got[i%2]++
		}
	}
	if got[0]+got[1] != 10 || got[0] == 0 || got[1] == 0 {
		t.Fatalf("allowed %v, want 10 in all, from both", got)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.addr})
	defer client.Close()
	if ttl := client.PTTL(context.Background(), KeyPrefix+"shared").Val(); ttl <= 0 || ttl > 10_000*time.Second {
		t.Fatalf("the bucket's PTTL is %v, want (0, 10000s]", ttl)
	}
}

// TestRedisDownAndBack stops redis: each policy answers within the timeout, with StoreError,
// counted; redis restarted on the same port, both are back to normal without a new Limiter.
func TestRedisDownAndBack(t *testing.T) {
	srv := startRedis(t)
	reg := prometheus.NewRegistry()
	open := newRedisLimiter(t, srv.addr, Config{RPS: 1000, FailOpen: true}, reg)
	closed := newRedisLimiter(t, srv.addr, Config{RPS: 1000}, prometheus.NewRegistry())
	for _, l := range []Limiter{open, closed} {
		if d := l.Allow(context.Background(), "k"); !d.Allowed || d.StoreError {
			t.Fatalf("redis up: %+v", d)
		}
	}
	srv.stop()
	// Enough calls to use up the pool's dial attempts: it then fails at once and probes.
	for range 300 {
		for i, l := range []Limiter{open, closed} {
			start := time.Now()
			d := l.Allow(context.Background(), "k")
			if took := time.Since(start); took > 400*time.Millisecond {
				t.Fatalf("Allow took %v with redis down, timeout 100ms", took)
			}
			want := Decision{Allowed: true, StoreError: true}
			if i == 1 {
				want = Decision{RetryAfter: time.Second, StoreError: true}
			}
			if d != want {
				t.Fatalf("redis down, policy %d: %+v, want %+v", i, d, want)
			}
		}
	}
	if n := counterValue(t, reg, "edge_ratelimit_store_errors_total", "policy", "open"); n != 300 {
		t.Fatalf("store errors %v, want 300", n)
	}
	srv.start()
	for _, l := range []Limiter{open, closed} {
		waitHealthy(t, l)
	}
}

// TestRedisStalled stops the server's process (SIGSTOP): connections stay up and answers never
// come, and the timeout alone bounds each call.
func TestRedisStalled(t *testing.T) {
	srv := startRedis(t)
	l := newRedisLimiter(t, srv.addr, Config{RPS: 1000}, nil)
	if d := l.Allow(context.Background(), "k"); d.StoreError {
		t.Fatalf("redis up: %+v", d)
	}
	srv.signal(syscall.SIGSTOP)
	for range 3 {
		start := time.Now()
		d := l.Allow(context.Background(), "k")
		if took := time.Since(start); took < 90*time.Millisecond || took > 500*time.Millisecond {
			t.Errorf("Allow took %v with redis stalled, timeout 100ms", took)
		}
		if d.Allowed || !d.StoreError {
			t.Fatalf("redis stalled, fail closed: %+v", d)
		}
	}
	srv.signal(syscall.SIGCONT)
	waitHealthy(t, l)
}

func waitHealthy(t *testing.T, l Limiter) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d := l.Allow(context.Background(), "k")
		if !d.StoreError && d.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 5 s after redis came back: %+v", d)
		}
	}
}

// TestScriptArithmetic runs the script on miniredis, whose TIME the test sets.
func TestScriptArithmetic(t *testing.T) {
	m := miniredis.RunT(t)
	t0 := time.Unix(1_700_000_000, 123_456_000)
	at := func(d time.Duration) { m.SetTime(t0.Add(d)) }
	s := newRedisStore(Config{RPS: 2, Burst: 3, RedisAddr: m.Addr(), RedisTimeout: time.Second})
	defer s.close()
	take := func(wantOK bool, wantRetry time.Duration) {
		t.Helper()
		ok, retry, err := s.take(context.Background(), "k")
		if err != nil || ok != wantOK || retry != wantRetry {
			t.Fatalf("take = %v, %v, %v; want %v, %v", ok, retry, err, wantOK, wantRetry)
		}
	}
	at(0)
	take(true, 0)
	if ttl := m.TTL(KeyPrefix + "k"); ttl != 500*time.Millisecond {
		t.Fatalf("TTL %v after one take, want 500ms: the time to fill up again", ttl)
	}
	take(true, 0)
	take(true, 0)
	take(false, 500*time.Millisecond)
	at(250 * time.Millisecond)
	take(false, 250*time.Millisecond)
	at(500 * time.Millisecond)
	take(true, 0)
	if got := m.HGet(KeyPrefix+"k", "ts"); got != strconv.FormatInt(t0.Add(500*time.Millisecond).UnixMicro(), 10) {
		t.Fatalf("ts %q, want the µs of the last take", got)
	}
	if ttl := m.TTL(KeyPrefix + "k"); ttl != 1500*time.Millisecond {
		t.Fatalf("TTL %v of an empty bucket, want 1.5s", ttl)
	}
	at(100 * time.Millisecond) // the clock went back: no refill, no harm
	take(false, 500*time.Millisecond)
	at(time.Hour) // full again, not more
	for range 3 {
		take(true, 0)
	}
	take(false, 500*time.Millisecond)

	thirds := newRedisStore(Config{RPS: 3, Burst: 1, RedisAddr: m.Addr(), RedisTimeout: time.Second})
	defer thirds.close()
	thirds.take(context.Background(), "t")
	if _, retry, _ := thirds.take(context.Background(), "t"); retry != 334*time.Millisecond {
		t.Fatalf("RetryAfter %v at 3 a second, want 334ms (rounded up)", retry)
	}
}
