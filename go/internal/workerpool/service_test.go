package workerpool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patternbench/patternbench/go/internal/expect"
)

// client has a timeout so that a hang fails the test instead of stalling it.
var client = &http.Client{Timeout: 10 * time.Second}

// startService serves a Service built from cfg with kernel call do (nil:
// Task.Do) on a real listener, and closes both when the test ends.
func startService(t *testing.T, cfg Config, do func(Task) string) (*Service, string) {
	t.Helper()
	if do == nil {
		do = Task.Do
	}
	svc, err := newService(cfg, do)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return svc, srv.URL
}

// reply is an answer read in full, so that a test can check status, headers
// and body after the connection is released.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request under ctx; the error is returned, not fatal, so that
// goroutines other than the test's can use it.
func send(t *testing.T, ctx context.Context, method, url string, body []byte) (reply, error) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return reply{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}, err
}

// mustSend is send for the test's own goroutine: an error ends the test.
func mustSend(t *testing.T, method, url string, body []byte) reply {
	t.Helper()
	r, err := send(t, context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decode parses a JSON answer keeping numbers exact (seeds reach 2^64-1).
func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("answer %q has data after the JSON value", b)
	}
	return v
}

// metric reads one series (name plus its label set as printed) from /metrics.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	r := mustSend(t, "GET", base+"/metrics", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// eventually waits up to 5 s for cond, which reads state that goroutines of
// the service update after the answer the test saw.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// spinURL is the GET of a spin task; spinAnswer is its 200 body, byte for byte.
func spinURL(base string, seed uint64, rounds int) string {
	return fmt.Sprintf("%s/work?kernel=spin&seed=%d&rounds=%d", base, seed, rounds)
}

func spinAnswer(seed uint64, rounds int) string {
	return fmt.Sprintf(`{"kernel":"spin","seed":%d,"rounds":%d,"size":0,"output":"%s"}`, seed, rounds, Spin(seed, rounds))
}

// isOverloaded checks a 503 answer: the envelope and Retry-After: 1.
func isOverloaded(r reply) bool {
	return r.status == 503 && r.header.Get("Retry-After") == "1" &&
		r.header.Get("Content-Type") == "application/json" &&
		strings.Contains(string(r.body), `"code":"overloaded"`)
}

// mustSendNoFatal is a GET for a goroutine other than the test's, where
// t.Fatal must not be called: an error is reported and the test goes on.
func mustSendNoFatal(t *testing.T, url string) reply {
	r, err := send(t, context.Background(), "GET", url, nil)
	if err != nil {
		t.Error(err)
	}
	return r
}

// TestVectors runs the contract's vectors, shared with the Python
// implementations, so that both answer every case alike.
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("../../../systems/workerpool/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Params struct {
			Workers   int `json:"workers"`
			Queue     int `json:"queue"`
			TimeoutMs int `json:"timeout_ms"`
		} `json:"params"`
		Cases []struct {
			Name    string `json:"name"`
			Request struct {
				Method string          `json:"method"`
				Path   string          `json:"path"`
				Body   json.RawMessage `json:"body"` // sent as written: 1.5 stays 1.5
			} `json:"request"`
			Expect struct {
				Status int             `json:"status"`
				Body   json.RawMessage `json:"body"`
			} `json:"expect"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	_, base := startService(t, Config{Workers: v.Params.Workers, Queue: v.Params.Queue,
		Timeout: time.Duration(v.Params.TimeoutMs) * time.Millisecond}, nil)
	for _, c := range v.Cases {
		if c.Request.Path == "" { // a raw case (malformed HTTP): the scaffold answers it, see serve
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			method := c.Request.Method
			if method == "" {
				method = "GET"
			}
			var body []byte
			if len(c.Request.Body) > 0 {
				body = c.Request.Body
			}
			r := mustSend(t, method, base+c.Request.Path, body)
			if r.status != c.Expect.Status {
				t.Errorf("status %d, want %d (body %s)", r.status, c.Expect.Status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got, want := decode(t, r.body), decode(t, c.Expect.Body); !expect.Match(want, got) {
				t.Errorf("body %s\nwant %s", r.body, c.Expect.Body)
			}
		})
	}
}

// TestRouting: paths match exactly and a wrong method gets 405 with Allow.
func TestRouting(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"HEAD", "/work", 405, "", "GET, POST"},
		{"DELETE", "/work?kernel=spin&rounds=1", 405, "method_not_allowed", "GET, POST"},
		{"POST", "/healthz", 405, "method_not_allowed", "GET"},
		{"GET", "/work/", 404, "not_found", ""},
		{"GET", "/", 404, "not_found", ""},
	} {
		r := mustSend(t, c.method, base+c.path, nil)
		if r.status != c.status || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.status, c.allow)
		}
		if c.code != "" && !strings.Contains(string(r.body), `"code":"`+c.code+`"`) {
			t.Errorf("%s %s: body %s, want code %s", c.method, c.path, r.body, c.code)
		}
	}
}
