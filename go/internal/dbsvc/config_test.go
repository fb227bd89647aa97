package dbsvc

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags("dbpgx", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Listen: DefaultListen, DSN: DefaultDSN, PoolSize: DefaultPoolSize, Items: DefaultItems,
		AcquireTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second}
	if cfg != want {
		t.Errorf("defaults: %+v, want %+v", cfg, want)
	}
	cfg, err = ParseFlags("dbpgx", []string{"--listen", "0.0.0.0:9", "--dsn", "postgresql://bench_app@127.0.0.1:55432/bench",
		"--pool-size", "8", "--items", "1000", "--acquire-timeout-ms", "250", "--statement-timeout-ms", "1500"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PoolSize != 8 || cfg.Items != 1000 || cfg.AcquireTimeout != 250*time.Millisecond ||
		cfg.StatementTimeout != 1500*time.Millisecond || cfg.Listen != "0.0.0.0:9" {
		t.Errorf("flags: %+v", cfg)
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MinConns != 8 || pc.MaxConns != 8 || pc.ConnConfig.RuntimeParams["statement_timeout"] != "1500" ||
		pc.ConnConfig.ConnectTimeout != 250*time.Millisecond || pc.ConnConfig.Port != 55432 || pc.ConnConfig.User != "bench_app" {
		t.Errorf("pool config: min %d max %d params %v connect %v", pc.MinConns, pc.MaxConns,
			pc.ConnConfig.RuntimeParams, pc.ConnConfig.ConnectTimeout)
	}

	bad := map[string][]string{
		"--pool-size":                   {"--pool-size", "0"},
		"--pool-size: must be 1":        {"--pool-size", "1001"},
		"--items":                       {"--items", "0"},
		"--acquire-timeout-ms":          {"--acquire-timeout-ms", "0"},
		"--statement-timeout-ms":        {"--statement-timeout-ms", "-5"},
		"--listen":                      {"--listen", "nope"},
		"--dsn":                         {"--dsn", "postgresql://u:secret@h:notaport/db"},
		"unexpected argument":           {"extra"},
		"flag provided but not defined": {"--nope"},
		"usage of dbpgx:":               {"-h"},
	}
	for want, args := range bad {
		_, err := ParseFlags("dbpgx", args)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error with %q", args, err, want)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows the password: %v", args, err)
		}
	}
}

// --dsn-env names a variable whose value, when set, is the DSN instead of --dsn.
func TestDSNFromTheEnvironment(t *testing.T) {
	t.Setenv("PB_TEST_DSN", "postgresql://u@db.example:6543/x")
	cfg, err := ParseFlags("dbpgx", []string{"--dsn", "postgresql://a@127.0.0.1:1/b", "--dsn-env", "PB_TEST_DSN"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DSN != "postgresql://u@db.example:6543/x" {
		t.Errorf("DSN %q, want the environment's", cfg.DSN)
	}
	t.Setenv("PB_TEST_DSN", "")
	cfg, err = ParseFlags("dbpgx", []string{"--dsn", "postgresql://a@127.0.0.1:1/b", "--dsn-env", "PB_TEST_DSN"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DSN != "postgresql://a@127.0.0.1:1/b" {
		t.Errorf("DSN %q, want --dsn's when the variable is empty", cfg.DSN)
	}
}
