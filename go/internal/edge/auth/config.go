// Package auth is the edge's bearer-token check: a JWT in "Authorization: Bearer …", signed
// with HS256 (a shared secret) or RS256 (the edge holds only the RSA public key), with its
// expiry, audience, optional issuer and optional required scope checked. A refusal is an
// *Error that carries the HTTP status, the JSON envelope's code and message, and the RFC 6750
// WWW-Authenticate challenge.
//
// The parser and the key are built once, in New: verifying is on every request's path.
package auth

import (
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Modes of --auth.
const (
	ModeNone  = "none"
	ModeHS256 = "hs256"
	ModeRS256 = "rs256"
)

// DefaultAudience is --jwt-audience's default, and edgetoken mint's --aud.
const DefaultAudience = "patternbench-edge"

// MinSecretBytes is the shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key at least
// as long as the hash (256 bits).
const MinSecretBytes = 32

// minRSABits refuses the weak RSA keys that crypto/rsa still verifies with.
const minRSABits = 2048

// Config is the edge's token check, from the command line.
type Config struct {
	// Mode is none (no check, New returns a nil Verifier), hs256 or rs256; "" means none.
	Mode string
	// KeyFile holds the HS256 secret (its text, without the trailing newline) or the RS256
	// public key in PEM (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or a certificate).
	KeyFile string
	// Audience must be one of the token's aud values.
	Audience string
	// Issuer, when not "", must equal the token's iss.
	Issuer string
	// Scope, when not "", lists the scopes (space-separated) that the token's scope claim must
	// all hold; without them the answer is 403.
	Scope string
	// Leeway is the clock skew tolerated on exp and nbf.
	Leeway time.Duration
}

// RegisterFlags declares the flags of c on fs, with their defaults: --auth none,
// --jwt-key-file, --jwt-audience patternbench-edge, --jwt-issuer "" (not checked),
// --jwt-scope "" (none required) and --jwt-leeway 0s (a Go duration: "2s", "500ms").
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Mode, "auth", ModeNone, "bearer-token check: none, hs256 or rs256")
	fs.StringVar(&c.KeyFile, "jwt-key-file", "",
		"hs256: file of the shared secret (at least 32 bytes); rs256: the RSA public key in PEM")
	fs.StringVar(&c.Audience, "jwt-audience", DefaultAudience, "audience the token's aud must contain")
	fs.StringVar(&c.Issuer, "jwt-issuer", "", "issuer the token's iss must equal (\"\": not checked)")
	fs.StringVar(&c.Scope, "jwt-scope", "",
		"scopes (space-separated) the token's scope claim must hold, else 403 (\"\": none)")
	fs.DurationVar(&c.Leeway, "jwt-leeway", 0, "clock skew tolerated on exp and nbf (e.g. 2s)")
}

// LoadHS256Secret reads an HS256 secret: the file's bytes less trailing CR and LF, at least
// MinSecretBytes of them. edgetoken writes the secret as hex text, which is used as is.
func LoadHS256Secret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secret := bytes.TrimRight(raw, "\r\n")
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the HS256 secret in %s is %d bytes; at least %d are needed",
			path, len(secret), MinSecretBytes)
	}
	return secret, nil
}

// loadKey is the verification key of c's mode and the one algorithm accepted with it.
func loadKey(c Config) (key any, alg string, err error) {
	if c.KeyFile == "" {
		return nil, "", fmt.Errorf("--jwt-key-file: required with --auth %s", c.Mode)
	}
	switch c.Mode {
	case ModeHS256:
		secret, err := LoadHS256Secret(c.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("--jwt-key-file: %w", err)
		}
		return secret, jwt.SigningMethodHS256.Alg(), nil
	default:
		pub, err := loadRSAPublicKey(c.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("--jwt-key-file: %w", err)
		}
		return pub, jwt.SigningMethodRS256.Alg(), nil
	}
}

func loadRSAPublicKey(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(data); block != nil && strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("%s holds a private key; the edge takes the public one (rs256.pub.pem)", path)
	}
	pub, err := jwt.ParseRSAPublicKeyFromPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s holds no RSA public key in PEM: %v", path, err)
	}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("the RSA key in %s has %d bits; at least %d are needed", path, bits, minRSABits)
	}
	return pub, nil
}

// validate checks what New does not read from a file.
func (c Config) validate() error {
	if c.Audience == "" {
		return errors.New("--jwt-audience: must not be empty")
	}
	if c.Leeway < 0 {
		return fmt.Errorf("--jwt-leeway: must not be negative, got %s", c.Leeway)
	}
	for _, s := range strings.Fields(c.Scope) {
		if !isScopeToken(s) {
			return fmt.Errorf("--jwt-scope: %q is not an RFC 6749 scope token", s)
		}
	}
	return nil
}

// isScopeToken reports whether s has only the characters RFC 6749 §3.3 allows in a scope
// (printable ASCII but space, '"' and '\'), which also keeps the challenge's quoting safe.
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return s != ""
}
