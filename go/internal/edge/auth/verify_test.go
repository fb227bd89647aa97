package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// secret is the HS256 secret of the tests, as edgetoken writes one: 64 hex digits.
const secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

var (
	keysOnce          sync.Once
	edgeKey, otherKey *rsa.PrivateKey
)

// rsaKeys are the edge's key pair and a stranger's, made once: RSA generation is slow under -race.
func rsaKeys(t *testing.T) (edge, other *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if edgeKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			otherKey, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	return edgeKey, otherKey
}

func publicPEM(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsWith are valid claims for the default audience, changed by edit.
func claimsWith(edit func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "aud": DefaultAudience, "iss": "tests",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "recs:read profile"}
	if edit != nil {
		edit(c)
	}
	return c
}

var challengeRE = regexp.MustCompile(`^Bearer realm="patternbench-edge"` +
	`(, error="(invalid_token|insufficient_scope)"` +
	`(, error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+")?(, scope="[\x21\x23-\x5b\x5d-\x7e ]+")?)?$`)

func TestVerify(t *testing.T) {
	edge, other := rsaKeys(t)
	hsFile := writeFile(t, "hs256.key", []byte(secret+"\n"))
	rsFile := writeFile(t, "rs256.pub.pem", publicPEM(t, edge))
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret), c) }
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, edge, c) }
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsWith(nil))
	valid := hs(claimsWith(nil))
	tampered := strings.Split(valid, ".")
	tampered[1] = strings.Split(hs(claimsWith(func(c jwt.MapClaims) { c["sub"] = "mallory" })), ".")[1]

	cases := []struct {
		name, mode, scope, issuer string
		leeway                    time.Duration
		header                    string
		status                    int    // 0: accepted
		message                   string // of the refusal
	}{
		{name: "hs256 valid", mode: ModeHS256, header: "Bearer " + valid},
		{name: "rs256 valid", mode: ModeRS256, header: "Bearer " + rs(claimsWith(nil))},
		{name: "scheme case-free", mode: ModeHS256, header: "bearer " + valid},
		{name: "audience among several", mode: ModeHS256,
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { c["aud"] = []string{"x", DefaultAudience} }))},
		{name: "issuer checked", mode: ModeRS256, issuer: "tests", header: "Bearer " + rs(claimsWith(nil))},
		{name: "scope held", mode: ModeHS256, scope: "recs:read", header: "Bearer " + valid},
		{name: "leeway", mode: ModeHS256, leeway: time.Minute,
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }))},

		{name: "missing header", mode: ModeHS256, status: 401, message: "missing bearer token"},
		{name: "basic scheme", mode: ModeHS256, header: "Basic dXNlcjpwYXNz", status: 401,
			message: "authorization scheme must be Bearer"},
		{name: "bearer alone", mode: ModeHS256, header: "Bearer", status: 401, message: "malformed bearer token"},
		{name: "bearer and space", mode: ModeHS256, header: "Bearer ", status: 401, message: "malformed bearer token"},
		{name: "two tokens", mode: ModeHS256, header: "Bearer " + valid + " x", status: 401,
			message: "malformed bearer token"},
		{name: "not a jwt", mode: ModeHS256, header: "Bearer abc.def", status: 401, message: "malformed token"},
		{name: "oversize", mode: ModeHS256, header: "Bearer " + strings.Repeat("a", maxTokenBytes+1), status: 401,
			message: "token too large"},
		{name: "expired", mode: ModeRS256, status: 401, message: "token expired",
			header: "Bearer " + rs(claimsWith(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }))},
		{name: "not yet valid", mode: ModeHS256, status: 401, message: "token not yet valid",
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))},
		{name: "no exp", mode: ModeHS256, status: 401, message: "token has no expiry",
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{name: "wrong audience", mode: ModeRS256, status: 401, message: "wrong audience",
			header: "Bearer " + rs(claimsWith(func(c jwt.MapClaims) { c["aud"] = "someone-else" }))},
		{name: "no audience", mode: ModeHS256, status: 401, message: "token has no audience",
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{name: "wrong issuer", mode: ModeHS256, issuer: "idp", status: 401, message: "wrong issuer",
			header: "Bearer " + valid},
		{name: "no issuer", mode: ModeHS256, issuer: "tests", status: 401, message: "token has no issuer",
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{name: "no subject", mode: ModeHS256, status: 401, message: "token has no subject",
			header: "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{name: "hs256 forged", mode: ModeHS256, status: 401, message: "signature is invalid",
			header: "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claimsWith(nil))},
		{name: "rs256 forged", mode: ModeRS256, status: 401, message: "signature is invalid",
			header: "Bearer " + sign(t, jwt.SigningMethodRS256, other, claimsWith(nil))},
		{name: "payload swapped", mode: ModeHS256, status: 401, message: "signature is invalid",
			header: "Bearer " + strings.Join(tampered, ".")},
		{name: "alg confusion", mode: ModeRS256, status: 401, message: "signing algorithm not accepted",
			header: "Bearer " + sign(t, jwt.SigningMethodHS256, publicPEM(t, edge), claimsWith(nil))},
		{name: "rs256 token at hs256", mode: ModeHS256, status: 401, message: "signing algorithm not accepted",
			header: "Bearer " + rs(claimsWith(nil))},
		{name: "alg none rs256", mode: ModeRS256, header: "Bearer " + none, status: 401,
			message: "signing algorithm not accepted"},
		{name: "alg none hs256", mode: ModeHS256, header: "Bearer " + none, status: 401,
			message: "signing algorithm not accepted"},
		{name: "scope missing", mode: ModeRS256, scope: "recs:write", status: 403,
			message: "token lacks the required scope", header: "Bearer " + rs(claimsWith(nil))},
		{name: "scope prefix only", mode: ModeHS256, scope: "recs", status: 403,
			message: "token lacks the required scope", header: "Bearer " + valid},
		{name: "no scope claim", mode: ModeHS256, scope: "recs:read", status: 403,
			message: "token lacks the required scope",
			header:  "Bearer " + hs(claimsWith(func(c jwt.MapClaims) { delete(c, "scope") }))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := hsFile
			if tc.mode == ModeRS256 {
				key = rsFile
			}
			v, err := New(Config{Mode: tc.mode, KeyFile: key, Audience: DefaultAudience,
				Issuer: tc.issuer, Scope: tc.scope, Leeway: tc.leeway})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/v1/recommend", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			p, e := v.Verify(r)
			if tc.status == 0 {
				if e != nil || p.Subject != "alice" {
					t.Fatalf("Verify = %+v, %v; want alice", p, e)
				}
				return
			}
			if e == nil {
				t.Fatalf("Verify accepted %+v; want %d %q", p, tc.status, tc.message)
			}
			checkError(t, e, tc.status, tc.message, tc.scope)
		})
	}
}

// checkError checks e's status, code, message and its RFC 6750 challenge.
func checkError(t *testing.T, e *Error, status int, message, scope string) {
	t.Helper()
	if e.Status != status || e.Message != message {
		t.Fatalf("got %d %q, want %d %q", e.Status, e.Message, status, message)
	}
	if !challengeRE.MatchString(e.Challenge) {
		t.Fatalf("challenge %q is not well-formed", e.Challenge)
	}
	var want string
	switch {
	case status == 403:
		if e.Code != CodePermissionDenied {
			t.Fatalf("code %q, want %q", e.Code, CodePermissionDenied)
		}
		want = `Bearer realm="patternbench-edge", error="insufficient_scope", scope="` + scope + `"`
	case strings.HasPrefix(message, "missing") || strings.Contains(message, "Bearer") ||
		message == "malformed bearer token":
		want = `Bearer realm="patternbench-edge"`
	default:
		want = `Bearer realm="patternbench-edge", error="invalid_token", error_description="` + message + `"`
	}
	if status == 401 && e.Code != CodeUnauthenticated {
		t.Fatalf("code %q, want %q", e.Code, CodeUnauthenticated)
	}
	if e.Challenge != want {
		t.Fatalf("challenge %q, want %q", e.Challenge, want)
	}
	if e.Error() != e.Code+": "+e.Message {
		t.Fatalf("Error() = %q", e.Error())
	}
}

// TestVerifyConcurrent shares one Verifier between goroutines, for -race.
func TestVerifyConcurrent(t *testing.T) {
	v, err := New(Config{Mode: ModeHS256, KeyFile: writeFile(t, "k", []byte(secret)), Audience: DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	good := "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), claimsWith(nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				r := httptest.NewRequest("GET", "/", nil)
				if g%2 == 0 {
					r.Header.Set("Authorization", good)
				}
				if _, e := v.Verify(r); (e == nil) != (g%2 == 0) {
					t.Errorf("goroutine %d: Verify error %v", g, e)
					return
				}
			}
		})
	}
	wg.Wait()
}
