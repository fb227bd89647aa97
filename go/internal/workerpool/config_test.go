package workerpool

import (
	"strings"
	"testing"
	"time"
)

// TestParseFlags: the defaults, the bounds at both ends, and errors of one
// line naming the flag, which main prints before exiting with status 2.
func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{Listen: "127.0.0.1:8080", Workers: DefaultWorkers(), Queue: 64, Timeout: 10 * time.Second}); cfg != want {
		t.Errorf("defaults %+v, want %+v", cfg, want)
	}
	cfg, err = ParseFlags([]string{"--listen", ":9", "--workers", "256", "--queue", "0", "--timeout-ms", "600000"})
	if want := (Config{Listen: ":9", Workers: 256, Queue: 0, Timeout: 10 * time.Minute}); err != nil || cfg != want {
		t.Errorf("got %+v %v, want %+v", cfg, err, want)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--workers", "0"}, "workers"},
		{[]string{"--workers", "257"}, "workers"},
		{[]string{"--workers", "two"}, "workers"},
		{[]string{"--queue", "-1"}, "queue"},
		{[]string{"--queue", "100001"}, "queue"},
		{[]string{"--timeout-ms", "0"}, "timeout-ms"},
		{[]string{"--timeout-ms", "600001"}, "timeout-ms"},
		{[]string{"--timeout-ms", "99999999999999999"}, "timeout-ms"},
		{[]string{"--pool", "threads"}, "pool"},
		{[]string{"extra"}, "extra"},
	} {
		_, err := ParseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming %s", c.args, err, c.flag)
		}
	}
	if _, err := New(Config{Workers: 1, Queue: 0}); err == nil || !strings.Contains(err.Error(), "timeout-ms") {
		t.Errorf("New without a timeout: %v", err)
	}
}
