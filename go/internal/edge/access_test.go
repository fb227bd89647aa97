package edge

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/patternbench/patternbench/go/internal/edge/auth"
	"github.com/patternbench/patternbench/go/internal/edge/ratelimit"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
)

// fakeVerifier knows two tokens: "good" (subject alice) and "weak" (403).
type fakeVerifier struct{}

func (fakeVerifier) Verify(r *http.Request) (auth.Principal, *auth.Error) {
	switch r.Header.Get("Authorization") {
	case "Bearer good":
		return auth.Principal{Subject: "alice"}, nil
	case "Bearer weak":
		return auth.Principal{}, &auth.Error{Status: 403, Code: "permission_denied", Message: "scope recommend required"}
	}
	return auth.Principal{}, &auth.Error{Status: 401, Code: "unauthenticated", Message: "no bearer token",
		Challenge: `Bearer realm="edge"`}
}

// fakeLimiter answers decide's decision and records the keys it was asked about.
type fakeLimiter struct {
	mu     sync.Mutex
	keys   []string
	decide ratelimit.Decision
}

func (l *fakeLimiter) Allow(_ context.Context, key string) ratelimit.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, key)
	return l.decide
}

func (l *fakeLimiter) set(d ratelimit.Decision) {
	l.mu.Lock()
	l.decide = d
	l.mu.Unlock()
}

func (l *fakeLimiter) asked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.keys)
}

func (*fakeLimiter) Close() error { return nil }

// Auth comes before rate limiting, which comes before the body; the limiter's key is the
// token's subject.
func TestAuthThenRateLimitThenBody(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	lim := &fakeLimiter{decide: ratelimit.Decision{Allowed: true}}
	e := startEdge(t, testConfig(core.addr), Options{Verifier: fakeVerifier{}, Limiter: lim})
	const bad = "garbage"

	resp, body := post(t, e.addr, restserver.RecommendPath, bad)
	wantError(t, resp, body, 401, "unauthenticated", "no bearer token")
	if resp.Header.Get("WWW-Authenticate") != `Bearer realm="edge"` || resp.Header.Get(RequestIDHeader) == "" {
		t.Errorf("WWW-Authenticate %q, X-Request-ID %q", resp.Header.Get("WWW-Authenticate"), resp.Header.Get(RequestIDHeader))
	}
	resp, body = post(t, e.addr, restserver.StreamPath, bad, "Authorization", "Bearer weak")
	wantError(t, resp, body, 403, "permission_denied", "scope")
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a 403 with WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	if len(lim.asked()) != 0 {
		t.Fatalf("the limiter was asked about %v before auth passed", lim.asked())
	}

	lim.set(ratelimit.Decision{RetryAfter: 1200 * time.Millisecond})
	resp, body = post(t, e.addr, restserver.RecommendPath, bad, "Authorization", "Bearer good", ClientIDHeader, "mallory")
	wantError(t, resp, body, 429, "rate_limited", "alice")
	if resp.Header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q for 1.2 s", resp.Header.Get("Retry-After"))
	}
	lim.set(ratelimit.Decision{RetryAfter: time.Millisecond})
	resp, _ = post(t, e.addr, restserver.RecommendPath, bad, "Authorization", "Bearer good")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q for 1 ms", resp.Header.Get("Retry-After"))
	}
	// A store that failed: the fail policy decides; either way it is logged.
	lim.set(ratelimit.Decision{StoreError: true, RetryAfter: time.Second})
	resp, body = post(t, e.addr, restserver.RecommendPath, bad, "Authorization", "Bearer good")
	wantError(t, resp, body, 503, "unavailable", "rate limit store")
	lim.set(ratelimit.Decision{Allowed: true, StoreError: true})
	resp, body = post(t, e.addr, restserver.RecommendPath, bad, "Authorization", "Bearer good")
	wantError(t, resp, body, 400, "invalid_argument", "")
	if n := len(e.logs.lines(t, "rate limit store failed")); n != 1 {
		t.Errorf("%d store-failure lines in a second, want 1", n)
	}
	resp, body = post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, "Authorization", "Bearer good")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, k := range lim.asked() {
		if k != "alice" {
			t.Fatalf("the limiter was asked about %v, want alice only", lim.asked())
		}
	}
	logs := e.logs.lines(t, "request")
	if last := logs[len(logs)-1]; last["client_id"] != "alice" || last["status"] != 200.0 {
		t.Errorf("log %v", last)
	}
}

// Without auth the client is its X-Client-ID, else anonymous.
func TestClientIDWithoutAuth(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	lim := &fakeLimiter{decide: ratelimit.Decision{Allowed: true}}
	e := startEdge(t, testConfig(core.addr), Options{Limiter: lim})
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, ClientIDHeader, "bob")
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
	post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, ClientIDHeader, "not valid")
	if got := lim.asked(); !slices.Equal(got, []string{"bob", anonymous, anonymous}) {
		t.Errorf("keys %v", got)
	}
}

// The real packages, wired from the Config: an HS256 token's subject is the client, and the
// memory limiter refuses the second call of a burst of 1.
func TestRealAuthAndRateLimit(t *testing.T) {
	core := startCore(t, "127.0.0.1:0")
	secret := strings.Repeat("s", auth.MinSecretBytes)
	keyFile := filepath.Join(t.TempDir(), "hs256.key")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(core.addr)
	cfg.Auth = auth.Config{Mode: auth.ModeHS256, KeyFile: keyFile, Audience: auth.DefaultAudience}
	cfg.RateLimit = ratelimit.Config{RPS: 0.001, Burst: 1, Store: ratelimit.StoreMemory, FailOpen: true}
	e := startEdge(t, cfg, Options{})
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "carol", "aud": auth.DefaultAudience, "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`)
	wantError(t, resp, body, 401, "unauthenticated", "")
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("a 401 without WWW-Authenticate")
	}
	resp, body = post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, "Authorization", "Bearer "+token)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e.addr, restserver.RecommendPath, `{"userId": "a", "limit": 1}`, "Authorization", "Bearer "+token)
	wantError(t, resp, body, 429, "rate_limited", "carol")
	wantMetric(t, e.addr, `edge_requests_total{code="429",route="/v1/recommend"} 1`)
	if !strings.Contains(scrape(t, e.addr), "edge_ratelimit_decisions_total") {
		t.Error("the limiter's metrics are not on /metrics")
	}
}
