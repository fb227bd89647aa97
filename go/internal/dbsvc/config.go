// Package dbsvc is the db pattern's go-pgx service: the HTTP/JSON contract of
// systems/db/README.md (GET /items/{id}, GET /items, POST /orders, GET /healthz,
// GET /metrics) in front of PostgreSQL through a pgxpool, on the go/internal/serve
// scaffold (its limits on malformed requests, time-outs and graceful shutdown).
//
// Every request that needs the database acquires one pooled connection
// explicitly (waiting at most --acquire-timeout-ms), runs its statements on it
// and releases it, so that the wait for the pool and the time a connection is
// held are measured apart. Whatever the database answers with an error — down,
// restarting, refusing, too slow — is a 503 `unavailable` with Retry-After: 1;
// the pool drops broken connections and makes new ones, so the service recovers
// by itself once the database is back.
package dbsvc

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/patternbench/patternbench/go/internal/flagargs"
)

// Config is the command line, validated.
type Config struct {
	Listen           string
	DSN              string
	PoolSize         int
	Items            int64
	AcquireTimeout   time.Duration
	StatementTimeout time.Duration
}

// Defaults and bounds of the flags.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultDSN                = "postgresql://bench_app@127.0.0.1:5432/bench"
	DefaultPoolSize           = 16
	DefaultItems              = 100_000
	DefaultAcquireTimeoutMs   = 2000
	DefaultStatementTimeoutMs = 5000
	MaxPoolSize               = 1000
	maxTimeoutMs              = 3_600_000 // an hour
)

// ParseFlags reads the command line of the binary called name. The error, if
// any, is one line naming the offending flag (or the usage on -h), for the
// caller to print before exiting with status 2.
func ParseFlags(name string, args []string) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		listen, dsn       string
		dsnEnv            string
		poolSize          int
		items             int64
		acquireMs, stmtMs int
	)
	fs.StringVar(&listen, "listen", DefaultListen, "address to serve on (host:port)")
	fs.StringVar(&dsn, "dsn", DefaultDSN, "the database (postgresql://USER@HOST:PORT/DB or key=value pairs)")
	fs.StringVar(&dsnEnv, "dsn-env", "", "an environment variable whose value, when set and not empty, is the DSN instead (DATABASE_URL: an existing server)")
	fs.IntVar(&poolSize, "pool-size", DefaultPoolSize, fmt.Sprintf("pooled connections, min = max, 1-%d", MaxPoolSize))
	fs.Int64Var(&items, "items", DefaultItems, "the seeded item count: count= draws ids from 1 to it")
	fs.IntVar(&acquireMs, "acquire-timeout-ms", DefaultAcquireTimeoutMs,
		"longest wait for a pooled connection (and for a new one to connect) before a 503")
	fs.IntVar(&stmtMs, "statement-timeout-ms", DefaultStatementTimeoutMs,
		"PostgreSQL's statement_timeout for the pool's sessions; a statement gets 1 s more before the client gives up on it")
	if err := flagargs.Parse(fs, args, "usage of "+name+":"); err != nil {
		return Config{}, err
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return Config{}, fmt.Errorf("--listen: %q is not host:port", listen)
	}
	switch {
	case acquireMs < 1 || acquireMs > maxTimeoutMs:
		return Config{}, fmt.Errorf("--acquire-timeout-ms: must be 1 to %d, got %d", maxTimeoutMs, acquireMs)
	case stmtMs < 1 || stmtMs > maxTimeoutMs:
		return Config{}, fmt.Errorf("--statement-timeout-ms: must be 1 to %d, got %d", maxTimeoutMs, stmtMs)
	}
	if v := lookupDSN(dsnEnv); v != "" {
		dsn = v
	}
	cfg := Config{
		Listen:           listen,
		DSN:              dsn,
		PoolSize:         poolSize,
		Items:            items,
		AcquireTimeout:   time.Duration(acquireMs) * time.Millisecond,
		StatementTimeout: time.Duration(stmtMs) * time.Millisecond,
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	if _, err := cfg.PoolConfig(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the numbers; New calls it too.
func (c Config) Validate() error {
	switch {
	case c.PoolSize < 1 || c.PoolSize > MaxPoolSize:
		return fmt.Errorf("--pool-size: must be 1 to %d, got %d", MaxPoolSize, c.PoolSize)
	case c.Items < 1:
		return fmt.Errorf("--items: must be at least 1, got %d", c.Items)
	case c.AcquireTimeout <= 0:
		return fmt.Errorf("--acquire-timeout-ms: must be at least 1, got %v", c.AcquireTimeout)
	case c.StatementTimeout < time.Millisecond:
		return fmt.Errorf("--statement-timeout-ms: must be at least 1, got %v", c.StatementTimeout)
	}
	return nil
}

// PoolConfig is the pgxpool configuration of c: MinConns = MaxConns =
// PoolSize, the sessions' statement_timeout, and a connect time-out of the
// acquire time-out (pgx's own default is two minutes) unless the DSN sets one.
// The error names --dsn.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		// pgconn's message quotes the DSN with its password redacted.
		return nil, fmt.Errorf("--dsn: %s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	n := int32(c.PoolSize)
	pc.MinConns, pc.MaxConns = n, n
	cc := pc.ConnConfig
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = c.AcquireTimeout
	}
	cc.RuntimeParams["statement_timeout"] = fmt.Sprint(c.StatementTimeout.Milliseconds())
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "dbpgx"
	}
	return pc, nil
}

// lookupDSN is the value of the environment variable name, when name is
// given and the variable set; else "".
func lookupDSN(name string) string {
	if name == "" {
		return ""
	}
	return os.Getenv(name)
}
