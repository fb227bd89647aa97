package loadgen

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// The bytes on the wire of the measured window: at least the answers' bodies
// of the requests that finished in it, at most all of them with their
// headers; the warm-up's are not counted.
func TestWireBytes(t *testing.T) {
	t.Parallel()
	const size = 10_000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "10000")
		_, _ = w.Write(make([]byte, size))
	}))
	defer srv.Close()
	// An HTTP/1.1 request and its answer's header are a few hundred bytes.
	const request, header = 60, 60
	for _, client := range httpClients {
		t.Run(client, func(t *testing.T) {
			cfg := runConfig(t, srv.URL+"/wire", 100, 300*time.Millisecond, client)
			cfg.Warmup = 300 * time.Millisecond // 30 more requests, outside the window
			res := mustRun(t, cfg)
			if res.Requests != 30 || res.Errors != 0 {
				t.Fatalf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorKinds)
			}
			// The last answers of the window may finish after it closes,
			// and the warm-up's last ones within it: a loose lower bound,
			// and an upper one well below the 60 requests of the run.
			s, r := res.WireSentBytes, res.WireReceivedBytes
			t.Logf("sent %d, received %d bytes for %d requests", s, r, res.Requests)
			if r < 15*size || r > 40*(size+400) {
				t.Errorf("received %d bytes for 30 answers of %d bytes", r, size)
			}
			if s < 15*request || s > 40*400 {
				t.Errorf("sent %d bytes for 30 requests", s)
			}
			if r < 15*(size+header) {
				t.Errorf("received %d bytes: no headers counted?", r)
			}
		})
	}
	// gRPC: the health check's frames, both ways.
	cfg := runConfig(t, "grpc://"+startHealth(t), 100, 200*time.Millisecond, HTTPClientRaw)
	cfg.GRPCMethod = "/grpc.health.v1.Health/Check"
	res := mustRun(t, cfg)
	t.Logf("gRPC: sent %d, received %d bytes for %d calls", res.WireSentBytes, res.WireReceivedBytes, res.Requests)
	// A call is at least a HEADERS and a DATA frame each way (9-byte frame
	// headers), and the answer a trailer too.
	if res.Errors != 0 || res.WireSentBytes < 10*18 || res.WireReceivedBytes < 10*27 {
		t.Errorf("gRPC: %d errors, sent %d, received %d bytes for %d calls",
			res.Errors, res.WireSentBytes, res.WireReceivedBytes, res.Requests)
	}
}

// Every Read and Write is counted, by any number of connections at once.
func TestCountingConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						_, _ = c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	w := &wireCounter{}
	dial := w.dialContext(&net.Dialer{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c, err := dial(t.Context(), "tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := make([]byte, 1000)
			got := make([]byte, 1000)
			for range 10 {
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
				for n := 0; n < len(got); {
					k, err := c.Read(got[n:])
					if err != nil {
						t.Error(err)
						return
					}
					n += k
				}
			}
		})
	}
	wg.Wait()
	if s, r := w.snapshot(); s != 40_000 || r != 40_000 {
		t.Errorf("sent %d, received %d bytes; want 40,000 each", s, r)
	}
	if s, r := (*wireCounter)(nil).snapshot(); s != 0 || r != 0 {
		t.Error("a nil counter counted")
	}
}
