package loadgen

import (
	"context"
	"net"
	"sync/atomic"
)

// wireCounter counts the bytes written to and read from every connection a
// target opens: what the application protocol puts on the wire (HTTP/1.1
// request and status lines, headers and bodies; HTTP/2 frames with gRPC's
// message framing, settings and pings), not TCP/IP headers. One atomic add
// per Read or Write call is all it costs. The two counters sit on separate
// cache lines, since readers and writers run on different cores.
type wireCounter struct {
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
	return w.sent.Load(), w.received.Load()
}

// wrap returns c counting into w; with a nil w, c itself.
func (w *wireCounter) wrap(c net.Conn) net.Conn {
	if w == nil {
		return c
	}
	return &countingConn{Conn: c, w: w}
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
	w *wireCounter
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.w.received.Add(int64(n))
	}
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.w.sent.Add(int64(n))
	}
	return n, err
}
