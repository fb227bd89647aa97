package hello

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHello(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	code, body, h := get(t, srv.URL+"/")
	if code != 200 || body != `{"message":"hello world"}`+"\n" || len(body) != 26 {
		t.Errorf("GET / = %d %q (%d bytes), want 200 and the 26-byte hello", code, body, len(body))
	}
	if h.Get("Content-Type") != "application/json" || h.Get("Content-Length") != "26" {
		t.Errorf("headers %v", h)
	}
	if code, body, _ := get(t, srv.URL+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/nothing"); code != 404 {
		t.Errorf("GET /nothing = %d, want 404", code)
	}
}
