package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunServesUntilCancelledAndLetsRequestsInFlightFinish(t *testing.T) {
	addr := freeAddr(t)
	started := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- Run(ctx, []Endpoint{{Addr: addr, Handler: slow}}, 5*time.Second) }()

	body := make(chan string, 1)
	go func() {
		for {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body <- string(b)
			return
		}
	}()
	<-started
	cancel() // the request is in flight: shutdown must wait for it
	if got := <-body; got != "done" {
		t.Fatalf("in-flight request answered %q, want done", got)
	}
	if err := <-result; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestRunReportsABadAddressAndReleasesTheOthers(t *testing.T) {
	good := freeAddr(t)
	err := Run(context.Background(), []Endpoint{
		{Addr: good, Handler: http.NotFoundHandler()},
		{Addr: "127.0.0.1:-1", Handler: http.NotFoundHandler()},
	}, time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "--listen:") {
		t.Fatalf("Run() = %v, want a --listen error", err)
	}
	ln, err := net.Listen("tcp", good) // the first listener was closed again
	if err != nil {
		t.Fatalf("first address still held: %v", err)
	}
	ln.Close()
}
