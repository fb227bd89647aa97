package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Config
	RegisterFlags(fs, &c)
	want := Config{Mode: ModeNone, Audience: DefaultAudience}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	err := fs.Parse([]string{"--auth", "rs256", "--jwt-key-file", "k.pem", "--jwt-audience", "a",
		"--jwt-issuer", "i", "--jwt-scope", "s t", "--jwt-leeway", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	want = Config{Mode: ModeRS256, KeyFile: "k.pem", Audience: "a", Issuer: "i", Scope: "s t", Leeway: 2 * time.Second}
	if c != want {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
}

func TestNewNone(t *testing.T) {
	for _, mode := range []string{ModeNone, ""} {
		if v, err := New(Config{Mode: mode}); v != nil || err != nil {
			t.Fatalf("New(%q) = %v, %v; want nil, nil", mode, v, err)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	edge, _ := rsaKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(edge)
	private := writeFile(t, "rs256.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	hs := writeFile(t, "hs256.key", []byte(secret))
	cases := []struct {
		name string
		c    Config
		want string // the error's start
	}{
		{"mode", Config{Mode: "HS512", Audience: "a"}, "--auth: must be none, hs256 or rs256"},
		{"no key file", Config{Mode: ModeHS256, Audience: "a"}, "--jwt-key-file: required with --auth hs256"},
		{"missing file", Config{Mode: ModeRS256, KeyFile: filepath.Join(t.TempDir(), "no"), Audience: "a"},
			"--jwt-key-file: open "},
		{"short secret", Config{Mode: ModeHS256, KeyFile: writeFile(t, "k", []byte(secret[:31]+"\n")), Audience: "a"},
			"--jwt-key-file: the HS256 secret in "},
		{"private key", Config{Mode: ModeRS256, KeyFile: private, Audience: "a"}, "--jwt-key-file: "},
		{"not pem", Config{Mode: ModeRS256, KeyFile: hs, Audience: "a"}, "--jwt-key-file: "},
		{"weak rsa", Config{Mode: ModeRS256, KeyFile: writeFile(t, "p", publicPEM(t, small)), Audience: "a"},
			"--jwt-key-file: the RSA key in "},
		{"no audience", Config{Mode: ModeHS256, KeyFile: hs}, "--jwt-audience: must not be empty"},
		{"leeway", Config{Mode: ModeHS256, KeyFile: hs, Audience: "a", Leeway: -time.Second}, "--jwt-leeway: "},
		{"scope", Config{Mode: ModeHS256, KeyFile: hs, Audience: "a", Scope: `a"b`}, "--jwt-scope: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.c)
			if err == nil || v != nil {
				t.Fatalf("New = %v, %v; want an error", v, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q, want one line starting %q", msg, tc.want)
			}
		})
	}
}

func TestLoadHS256Secret(t *testing.T) {
	got, err := LoadHS256Secret(writeFile(t, "k", []byte(secret+"\r\n")))
	if err != nil || string(got) != secret {
		t.Fatalf("LoadHS256Secret = %q, %v; want the text less its newline", got, err)
	}
	if _, err := LoadHS256Secret(writeFile(t, "k", []byte(strings.Repeat("\n", 40)))); err == nil {
		t.Fatal("a secret of newlines was accepted")
	}
}
