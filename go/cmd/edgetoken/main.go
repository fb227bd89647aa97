// Command edgetoken makes the keys of the edge's bearer-token check (package auth) and mints
// tokens for them, for load tests and for the edge's tests:
//
//	edgetoken keys --dir DIR [--force]
//	edgetoken mint --alg hs256|rs256 --key-file FILE --sub SUBJECT [--aud AUD] [--iss ISS]
//	               [--scope "a b"] [--ttl 1h] [--nbf-in 0s] [--expired]
//
// keys writes DIR/hs256.key (the shared secret: 32 random bytes as 64 hex digits and a newline;
// the edge uses that text as the secret), DIR/rs256.pem (an RSA 2048 private key, PKCS#8) and
// DIR/rs256.pub.pem (its public key, PKIX: the edge's --jwt-key-file with --auth rs256). Files
// already there are kept unless --force. mint prints one token on stdout; its --key-file is
// hs256.key or rs256.pem.
//
// A bad command line is one line on stderr and exit status 2; any other failure, status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  edgetoken keys --dir DIR [--force]
  edgetoken mint --alg hs256|rs256 --key-file FILE --sub SUBJECT [--aud AUD] [--iss ISS]
                 [--scope "a b"] [--ttl 1h] [--nbf-in 0s] [--expired]
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// usageError is a bad command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is the command with its arguments; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 0:
		err = usagef("missing command: keys or mint (edgetoken -h for usage)")
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(stdout, usage)
		return 0
	case args[0] == "keys":
		err = keysCommand(args[1:], stdout)
	case args[0] == "mint":
		err = mintCommand(args[1:], stdout)
	default:
		err = usagef("unknown command %q: keys or mint", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "edgetoken:", err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// parseFlags parses a command's flags; a flag error becomes a usageError, and no positional
// argument is taken.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
