package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patternbench/patternbench/go/internal/edge/auth"
)

// edgetoken runs the command in-process: its exit status, stdout and stderr.
func edgetoken(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := edgetoken(args...)
	if code != 0 {
		t.Fatalf("edgetoken %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// verify checks the token with an edge's Verifier of mode, keyed from dir.
func verify(t *testing.T, dir, mode, token string) (auth.Principal, *auth.Error) {
	t.Helper()
	keyFile := filepath.Join(dir, secretFile)
	if mode == auth.ModeRS256 {
		keyFile = filepath.Join(dir, publicKeyFile)
	}
	v, err := auth.New(auth.Config{Mode: mode, KeyFile: keyFile, Audience: auth.DefaultAudience,
		Issuer: "tests", Scope: "recs:read"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return v.Verify(r)
}

func TestKeysMintVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out := mustRun(t, "keys", "--dir", dir)
	if strings.Count(out, "wrote ") != 3 {
		t.Fatalf("keys said %q, want three files written", out)
	}
	if fi, err := os.Stat(filepath.Join(dir, secretFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v; want mode 0600", fi, err)
	}
	for _, alg := range []string{auth.ModeHS256, auth.ModeRS256} {
		t.Run(alg, func(t *testing.T) {
			keyFile := filepath.Join(dir, secretFile)
			if alg == auth.ModeRS256 {
				keyFile = filepath.Join(dir, privateKeyFile)
			}
			mintArgs := []string{"mint", "--alg", alg, "--key-file", keyFile, "--sub", "alice",
				"--iss", "tests", "--scope", "profile recs:read"}
			token := strings.TrimSuffix(mustRun(t, mintArgs...), "\n")
			if p, e := verify(t, dir, alg, token); e != nil || p.Subject != "alice" {
				t.Fatalf("Verify = %+v, %v; want alice", p, e)
			}
			header := strings.TrimSuffix(mustRun(t, append(mintArgs, "--bearer")...), "\n")
			if !strings.HasPrefix(header, "Bearer ") || strings.Count(header, ".") != 2 {
				t.Fatalf("--bearer printed %q, want \"Bearer <token>\"", header)
			}
			for _, tc := range []struct {
				extra []string
				want  string
			}{
				{[]string{"--expired"}, "token expired"},
				{[]string{"--ttl", "-1m"}, "token expired"},
				{[]string{"--nbf-in", "1h"}, "token not yet valid"},
				{[]string{"--aud", "elsewhere"}, "wrong audience"},
			} {
				token := strings.TrimSuffix(mustRun(t, append(mintArgs, tc.extra...)...), "\n")
				if _, e := verify(t, dir, alg, token); e == nil || e.Message != tc.want {
					t.Errorf("%v: Verify error %v, want %q", tc.extra, e, tc.want)
				}
			}
		})
	}
}

func TestKeysKeepsExisting(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "keys", "--dir", dir)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	secret, private, public := read(secretFile), read(privateKeyFile), read(publicKeyFile)
	if out := mustRun(t, "keys", "--dir", dir); strings.Count(out, "kept ") != 3 {
		t.Fatalf("second run said %q, want three files kept", out)
	}
	if read(secretFile) != secret || read(privateKeyFile) != private || read(publicKeyFile) != public {
		t.Fatal("a second run changed the keys")
	}

	os.Remove(filepath.Join(dir, publicKeyFile)) // made again from the private key
	mustRun(t, "keys", "--dir", dir)
	if read(publicKeyFile) != public {
		t.Fatal("the public key made again differs")
	}

	mustRun(t, "keys", "--dir", dir, "--force")
	if read(secretFile) == secret || read(privateKeyFile) == private || read(publicKeyFile) == public {
		t.Fatal("--force kept a key")
	}

	os.Remove(filepath.Join(dir, privateKeyFile))
	if code, _, errOut := edgetoken("keys", "--dir", dir); code != 1 || !strings.Contains(errOut, "exists without") {
		t.Fatalf("a public key alone: exit %d, %q; want 1 and a refusal", code, errOut)
	}
}

func TestBadCommandLine(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k")
	for _, args := range [][]string{
		{},
		{"frob"},
		{"keys"},
		{"keys", "--dir", t.TempDir(), "--bogus"},
		{"keys", "--dir", t.TempDir(), "extra"},
		{"mint", "--key-file", key, "--sub", "a"},
		{"mint", "--alg", "HS512", "--key-file", key, "--sub", "a"},
		{"mint", "--alg", "hs256", "--sub", "a"},
		{"mint", "--alg", "hs256", "--key-file", key},
		{"mint", "--alg", "hs256", "--key-file", key, "--sub", "a", "--aud", ""},
		{"mint", "--alg", "hs256", "--key-file", key, "--sub", "a", "--ttl", "0s"},
		{"mint", "--alg", "hs256", "--key-file", key, "--sub", "a", "--ttl", "soon"},
	} {
		code, out, errOut := edgetoken(args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "edgetoken: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and one line on stderr", args, code, out, errOut)
		}
	}
	// A key file that cannot be read is not a usage error.
	if code, _, errOut := edgetoken("mint", "--alg", "hs256", "--key-file", key, "--sub", "a"); code != 1 ||
		!strings.HasPrefix(errOut, "edgetoken: mint: --key-file: ") {
		t.Errorf("missing key file: exit %d, %q; want 1", code, errOut)
	}
	if code, out, _ := edgetoken("mint", "-h"); code != 0 || !strings.HasPrefix(out, "usage:") {
		t.Errorf("mint -h: exit %d, %q; want the usage", code, out)
	}
}
