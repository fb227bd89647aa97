package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Realm is the realm of every challenge.
const Realm = "patternbench-edge"

// Codes of Error, the JSON envelope's code.
const (
	CodeUnauthenticated  = "unauthenticated"
	CodePermissionDenied = "permission_denied"
)

// maxTokenBytes bounds the token parsed: a real one is well under 2 KiB, and parsing (base64,
// JSON) costs in proportion to the length.
const maxTokenBytes = 8 << 10

// Principal is who a valid token speaks for.
type Principal struct {
	Subject string // the token's sub, never ""
}

// Error is a refused request: 401 unauthenticated (no usable token, or an invalid one) or 403
// permission_denied (a valid token without the required scope).
//
// Challenge is the WWW-Authenticate value, per RFC 6750 §3: with no error attribute when the
// request carries no bearer token (missing header, another scheme, "Bearer" with no token),
// error="invalid_token" with a fixed error_description when the token is refused, and on 403
// error="insufficient_scope" with the scope required (§3.1 names 403 for insufficient_scope;
// the challenge tells a client which scope to ask for). Messages and descriptions are constants
// of this package: nothing of the token is echoed, and none holds '"' or '\'.
//
// The *Error values are shared between calls: read them, do not modify them.
type Error struct {
	Status    int    // http.StatusUnauthorized or http.StatusForbidden
	Code      string // CodeUnauthenticated or CodePermissionDenied
	Message   string // a short sentence for the JSON envelope: "token expired"
	Challenge string // the WWW-Authenticate value
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Verifier checks a request's bearer token; it is safe for concurrent use.
type Verifier interface {
	Verify(r *http.Request) (Principal, *Error)
}

// noToken is a 401 for a request without a bearer token: no error attribute (RFC 6750 §3.1).
func noToken(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg,
		Challenge: `Bearer realm="` + Realm + `"`}
}

// invalidToken is a 401 for a refused token.
func invalidToken(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg,
		Challenge: `Bearer realm="` + Realm + `", error="invalid_token", error_description="` + msg + `"`}
}

var (
	errMissing     = noToken("missing bearer token")
	errScheme      = noToken("authorization scheme must be Bearer")
	errEmpty       = noToken("malformed bearer token")
	errTooLarge    = invalidToken("token too large")
	errMalformed   = invalidToken("malformed token")
	errAlgorithm   = invalidToken("signing algorithm not accepted")
	errSignature   = invalidToken("signature is invalid")
	errExpired     = invalidToken("token expired")
	errNotYetValid = invalidToken("token not yet valid")
	errNoExpiry    = invalidToken("token has no expiry")
	errNoAudience  = invalidToken("token has no audience")
	errAudience    = invalidToken("wrong audience")
	errNoIssuer    = invalidToken("token has no issuer")
	errIssuer      = invalidToken("wrong issuer")
	errNoSubject   = invalidToken("token has no subject")
	errClaims      = invalidToken("invalid claims")
)

// claims are the ones read: the registered ones and OAuth's space-separated scope. A scope
// that is not a JSON string makes the token malformed.
type claims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}

type verifier struct {
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	alg      string
	scopes   []string // all required
	errScope *Error
}

// New builds c's Verifier: nil (and no error) when c.Mode is none or "". The error is one line
// naming the flag at fault.
func New(c Config) (Verifier, error) {
	switch c.Mode {
	case ModeNone, "":
		return nil, nil
	case ModeHS256, ModeRS256:
	default:
		return nil, fmt.Errorf("--auth: must be %s, %s or %s, got %q", ModeNone, ModeHS256, ModeRS256, c.Mode)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	key, alg, err := loadKey(c)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}), // the only defence against alg confusion and "none"
		jwt.WithExpirationRequired(),
		jwt.WithAudience(c.Audience),
		jwt.WithLeeway(c.Leeway),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	v := &verifier{
		parser:  jwt.NewParser(opts...),
		keyfunc: func(*jwt.Token) (any, error) { return key, nil },
		alg:     alg,
		scopes:  strings.Fields(c.Scope),
	}
	if len(v.scopes) > 0 {
		scope := strings.Join(v.scopes, " ")
		v.errScope = &Error{Status: http.StatusForbidden, Code: CodePermissionDenied,
			Message:   "token lacks the required scope",
			Challenge: `Bearer realm="` + Realm + `", error="insufficient_scope", scope="` + scope + `"`}
	}
	return v, nil
}

// Verify returns the token's principal, or why the request is refused.
func (v *verifier) Verify(r *http.Request) (Principal, *Error) {
	raw, e := bearerToken(r.Header.Get("Authorization"))
	if e != nil {
		return Principal{}, e
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(raw, &c, v.keyfunc)
	if err != nil {
		return Principal{}, v.reason(tok, &c, err)
	}
	if c.Subject == "" {
		return Principal{}, errNoSubject
	}
	if !hasAll(c.Scope, v.scopes) {
		return Principal{}, v.errScope
	}
	return Principal{Subject: c.Subject}, nil
}

// bearerToken is the token of an Authorization value "Bearer <token>" (the scheme's case is
// free, RFC 7235 §2.1).
func bearerToken(header string) (string, *Error) {
	if header == "" {
		return "", errMissing
	}
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errScheme
	}
	token = strings.TrimLeft(token, " ")
	switch {
	case token == "" || strings.ContainsAny(token, " \t"):
		return "", errEmpty
	case len(token) > maxTokenBytes:
		return "", errTooLarge
	}
	return token, nil
}

// reason maps the parser's error to the refusal. The signature is checked before the claims,
// so a claim is reported only for a token signed with the edge's key.
func (v *verifier) reason(tok *jwt.Token, c *claims, err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case tok != nil && (tok.Method == nil || tok.Method.Alg() != v.alg):
		return errAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return errSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return errNoExpiry
		case len(c.Audience) == 0 || c.Audience[0] == "":
			return errNoAudience
		default:
			return errNoIssuer
		}
	}
	return errClaims
}

// hasAll reports whether the space-separated scope holds every one of want.
func hasAll(scope string, want []string) bool {
	for _, w := range want {
		found := false
		for rest := scope; rest != "" && !found; {
			var s string
			s, rest, _ = strings.Cut(rest, " ")
			found = s == w
		}
		if !found {
			return false
		}
	}
	return true
}
