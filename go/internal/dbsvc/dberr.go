package dbsvc

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Every error of a database call is answered 503 unavailable with
// Retry-After: 1 (the client never sees its text). isOutage tells the errors
// of a database that is down, restarting, refusing or too slow — expected in
// an outage, logged once when it starts — from the rest, which are logged
// each time as they may be bugs.
func isOutage(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err) {
		return true // an acquire past --acquire-timeout-ms, a statement past its deadline, shutdown
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return outageCode(pgErr.Code)
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true // refused, reset, "the database system is starting up" (57P03) while connecting
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	// A connection the driver found broken, or a pool closed at shutdown.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}

// outageCode reports whether a SQLSTATE is the database's trouble rather than
// the statement's: connection exceptions (class 08), operator intervention
// (admin or crash shutdown, cannot connect now, query canceled, as
// statement_timeout does), insufficient resources (class 53, too many
// connections among them) and a serialization failure or deadlock (the
// service's transactions take their locks in one order, so neither is
// expected).
func outageCode(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "57P05", "57014", "40001", "40P01":
		return true
	}
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53")
}

// dbHealth logs an outage when it starts and when it ends, not every request
// it fails, and logs every other database error.
type dbHealth struct {
	down atomic.Bool
	logf func(format string, args ...any)
}

// failed records that a database call failed with err.
func (h *dbHealth) failed(err error) {
	if !isOutage(err) {
		h.logf("database error (answered 503): %v", err)
		return
	}
	if h.down.CompareAndSwap(false, true) {
		h.logf("database unavailable: %v", err)
	}
}

// ok records that a database call succeeded.
func (h *dbHealth) ok() {
	if h.down.Load() && h.down.CompareAndSwap(true, false) {
		h.logf("database available again")
	}
}
