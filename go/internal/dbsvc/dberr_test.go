package dbsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsOutage(t *testing.T) {
	outage := []error{
		context.DeadlineExceeded,
		fmt.Errorf("acquire: %w", context.DeadlineExceeded),
		fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF),
		io.EOF,
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		fmt.Errorf("write: %w", syscall.EPIPE),
		pgconn.ErrConnClosed,
		errors.New("conn closed"),
		errors.New("closed pool"),
		&pgconn.PgError{Code: "57P01"}, // admin shutdown
		&pgconn.PgError{Code: "57P02"}, // crash shutdown
		&pgconn.PgError{Code: "57P03"}, // cannot connect now: starting up
		&pgconn.PgError{Code: "08006"},
		&pgconn.PgError{Code: "08P01"},
		&pgconn.PgError{Code: "53300"}, // too many connections
		&pgconn.PgError{Code: "57014"}, // statement_timeout
		fmt.Errorf("commit: %w", &pgconn.PgError{Code: "40001"}),
	}
	for _, err := range outage {
		if !isOutage(err) {
			t.Errorf("isOutage(%v) = false", err)
		}
	}
	for _, err := range []error{
		errors.New("can't scan into dest[0]"),
		&pgconn.PgError{Code: "23505"}, // unique violation
		&pgconn.PgError{Code: "42P01"}, // undefined table
		&pgconn.PgError{Code: "42501"}, // insufficient privilege
	} {
		if isOutage(err) {
			t.Errorf("isOutage(%v) = true", err)
		}
	}
}

// lines is a log sink safe for concurrent use.
type lines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestHealthLogsOutageOnce(t *testing.T) {
	var log lines
	h := dbHealth{logf: func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }}
	h.ok()
	h.failed(io.EOF)
	h.failed(io.EOF)
	h.failed(&pgconn.PgError{Code: "42P01", Message: "relation does not exist"})
	h.ok()
	h.ok()
	want := "database unavailable: EOF\ndatabase error (answered 503): : relation does not exist (SQLSTATE 42P01)\ndatabase available again\n"
	if log.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", log.String(), want)
	}
}
