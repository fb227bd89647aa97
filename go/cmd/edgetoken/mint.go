package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/patternbench/patternbench/go/internal/edge/auth"
)

// mintOptions is mint's command line.
type mintOptions struct {
	alg, keyFile, sub, aud, iss, scope string
	ttl, nbfIn                         time.Duration
	expired, bearer                    bool
}

// tokenClaims are the claims minted: the registered ones and OAuth's space-separated scope,
// what auth reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}

func mintCommand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	var o mintOptions
	fs.StringVar(&o.alg, "alg", "", "signing algorithm: hs256 or rs256")
	fs.StringVar(&o.keyFile, "key-file", "", "hs256: the secret (hs256.key); rs256: the private key (rs256.pem)")
	fs.StringVar(&o.sub, "sub", "", "subject: the client id the edge sees")
	fs.StringVar(&o.aud, "aud", auth.DefaultAudience, "audience")
	fs.StringVar(&o.iss, "iss", "", "issuer (\"\": none)")
	fs.StringVar(&o.scope, "scope", "", "space-separated scopes (\"\": none)")
	fs.DurationVar(&o.ttl, "ttl", time.Hour, "lifetime; a negative one mints an expired token")
	fs.DurationVar(&o.nbfIn, "nbf-in", 0, "not valid before now plus this (0: no nbf claim)")
	fs.BoolVar(&o.expired, "expired", false, "mint a token that expired --ttl ago")
	fs.BoolVar(&o.bearer, "bearer", false, "print the Authorization header's value, \"Bearer <token>\"")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case o.alg != auth.ModeHS256 && o.alg != auth.ModeRS256:
		return usagef("mint: --alg: must be hs256 or rs256, got %q", o.alg)
	case o.keyFile == "":
		return usagef("mint: --key-file is required")
	case o.sub == "":
		return usagef("mint: --sub is required")
	case o.aud == "":
		return usagef("mint: --aud: must not be empty")
	case o.ttl == 0:
		return usagef("mint: --ttl: must not be 0 (a negative one, or --expired, mints an expired token)")
	}
	token, err := mint(o, time.Now())
	if err != nil {
		return fmt.Errorf("mint: %w", err)
	}
	if o.bearer {
		token = "Bearer " + token
	}
	fmt.Fprintln(out, token)
	return nil
}

// mint signs o's claims, issued at now.
func mint(o mintOptions, now time.Time) (string, error) {
	var method jwt.SigningMethod
	var key any
	var err error
	if o.alg == auth.ModeHS256 {
		method = jwt.SigningMethodHS256
		key, err = auth.LoadHS256Secret(o.keyFile)
	} else {
		method = jwt.SigningMethodRS256
		key, err = readPrivateKey(o.keyFile)
	}
	if err != nil {
		return "", fmt.Errorf("--key-file: %w", err)
	}
	ttl := o.ttl
	if o.expired && ttl > 0 {
		ttl = -ttl
	}
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   o.sub,
			Audience:  jwt.ClaimStrings{o.aud},
			Issuer:    o.iss,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope: o.scope,
	}
	if o.nbfIn != 0 {
		c.NotBefore = jwt.NewNumericDate(now.Add(o.nbfIn))
	}
	return jwt.NewWithClaims(method, c).SignedString(key)
}
