package loadgen

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// wireCounter counts the bytes written to and read from every connection a
// target opens: what the application protocol puts on the wire (HTTP/1.1
// request and status lines, headers and bodies; HTTP/2 frames with gRPC's
// message framing, settings and pings), not TCP/IP headers. Each connection
// has counters of its own, so that a Read or Write costs one uncontended
// atomic add, whatever the number of workers and cores; a snapshot sums them
// (twice a run: when the window opens and when it closes).
type wireCounter struct {
	mu    sync.Mutex
	conns []*connCounts
}

// connCounts are one connection's counters, on separate cache lines: a
// connection's reader and writer (gRPC's) run on different cores.
type connCounts struct {
	sent     atomic.Int64
	_        [56]byte
	received atomic.Int64
	_        [56]byte
}

// snapshot returns the bytes sent and received so far; nil counts nothing.
func (w *wireCounter) snapshot() (sent, received int64) {
	if w == nil {
		return 0, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		sent += c.sent.Load()
		received += c.received.Load()
	}
	return sent, received
}

// wrap returns c counting into counters of its own in w; with a nil w, c
// itself.
func (w *wireCounter) wrap(c net.Conn) net.Conn {
	if w == nil {
		return c
	}
	counts := new(connCounts)
	w.mu.Lock()
	w.conns = append(w.conns, counts)
	w.mu.Unlock()
	return &countingConn{Conn: c, counts: counts}
}

// dialContext dials as d does and counts the connection's bytes, for
// net/http's Transport.DialContext.
func (w *wireCounter) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return w.wrap(c), nil
	}
}

// countingConn is a net.Conn whose traffic is counted.
type countingConn struct {
	net.Conn
	counts *connCounts
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.counts.received.Add(int64(n))
	}
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.counts.sent.Add(int64(n))
	}
	return n, err
}
