package flagargs

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func newSet() *flag.FlagSet {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("n", 3, "how many")
	return fs
}

func TestParse(t *testing.T) {
	if err := Parse(newSet(), []string{"--n", "4"}, "usage of x:"); err != nil {
		t.Fatalf("valid flags: %v", err)
	}
	err := Parse(newSet(), []string{"-h"}, "usage of x:")
	if err == nil || !strings.HasPrefix(err.Error(), "usage of x:\n") || !strings.Contains(err.Error(), "how many") {
		t.Fatalf("-h: %v, want the usage line and the defaults", err)
	}
	if err := Parse(newSet(), []string{"--n", "z"}, "u"); err == nil || !strings.Contains(err.Error(), "invalid value") {
		t.Fatalf("bad value: %v", err)
	}
	if err := Parse(newSet(), []string{"extra"}, "u"); err == nil || err.Error() != `unexpected argument "extra"` {
		t.Fatalf("positional argument: %v", err)
	}
}
