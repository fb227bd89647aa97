package loadgen

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A body with placeholders is rendered per request, by the same draw as the
// URL, with its own Content-Length; both clients send it, and a keep-alive
// connection stays in step (a wrong length would garble the next request).
func TestBodyPlaceholders(t *testing.T) {
	t.Parallel()
	type seen struct {
		uri, body string
		length    int64
		header    string
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, seen{r.RequestURI, string(b), r.ContentLength, r.Header.Get("Content-Length")})
		mu.Unlock()
	}))
	defer srv.Close()
	userID := regexp.MustCompile(`^user-[0-9]{1,5}$`)
	for _, client := range httpClients {
		t.Run(client, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			cfg := runConfig(t, srv.URL+"/v1/recommend?shard={rand:4}", 200, 250*time.Millisecond, client)
			cfg.Method, cfg.Body = "POST", `{"userId":"user-{rand:100000}","limit":{rand:10}}`
			cfg.Headers = []Header{{"Content-Type", "application/json"}}
			cfg.MaxInFlight = 2 // keep-alive connections carry many requests each
			res := mustRun(t, cfg)
			if res.Requests != 50 || res.Errors != 0 {
				t.Fatalf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorKinds)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 50 {
				t.Fatalf("the server saw %d requests, want 50", len(got))
			}
			bodies := map[string]bool{}
			for _, s := range got {
				if s.length != int64(len(s.body)) || s.header != strconv.Itoa(len(s.body)) {
					t.Errorf("Content-Length %d (header %q) for a body of %d bytes: %q", s.length, s.header, len(s.body), s.body)
				}
				var v struct {
					UserID string `json:"userId"`
					Limit  int    `json:"limit"`
				}
				if err := json.Unmarshal([]byte(s.body), &v); err != nil || !userID.MatchString(v.UserID) || v.Limit < 0 || v.Limit > 9 {
					t.Errorf("body %q (%v)", s.body, err)
				}
				if !strings.HasPrefix(s.uri, "/v1/recommend?shard=") || len(s.uri) != len("/v1/recommend?shard=0") {
					t.Errorf("target %q", s.uri)
				}
				bodies[s.body] = true
			}
			if len(bodies) < 45 { // 50 draws of 10^6 bodies
				t.Errorf("only %d distinct bodies of 50", len(bodies))
			}
		})
	}
}

// The raw client's bytes: a body without placeholders is part of the one
// request built at start, exactly as before; one with placeholders gets its
// Content-Length per request, in the same place among the headers.
func TestRawRequestBytes(t *testing.T) {
	mk := func(url, body string) *rawHTTPTarget {
		cfg := runConfig(t, url, 1, time.Second, HTTPClientRaw)
		cfg.Method, cfg.Body = "POST", body
		cfg.Headers = []Header{{"X", "y"}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return newRawHTTPTarget(&cfg, nil)
	}
	head := " HTTP/1.1\r\nHost: h:1\r\nUser-Agent: patternbench-loadgen\r\nContent-Length: "
	fixed := mk("http://h:1/a", `{"q":1}`)
	if want := "POST /a" + head + "7\r\nX: y\r\n\r\n{\"q\":1}"; string(fixed.fixed) != want {
		t.Errorf("fixed request %q, want %q", fixed.fixed, want)
	}
	tm := mk("http://h:1/a", `{"q":{rand:1000}}`)
	if tm.fixed != nil {
		t.Error("a body with placeholders was pre-rendered")
	}
	for _, c := range []struct {
		draw uint64
		want string
	}{
		{0, "POST /a" + head + "7\r\nX: y\r\n\r\n{\"q\":0}"},
		{7, "POST /a" + head + "7\r\nX: y\r\n\r\n{\"q\":7}"},
		{42, "POST /a" + head + "8\r\nX: y\r\n\r\n{\"q\":42}"},
		{999, "POST /a" + head + "9\r\nX: y\r\n\r\n{\"q\":999}"},
	} {
		if got := string(tm.build(nil, c.draw)); got != c.want {
			t.Errorf("draw %d: %q, want %q", c.draw, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { tm.build(make([]byte, 0, 256)[:0], 5) }); n > 1 {
		t.Errorf("%v allocations per request, want the buffer's only", n)
	}
}

// The URL's and the body's placeholders are digits of one draw: over the
// whole space every combination appears exactly once.
func TestBodySharesTheDraw(t *testing.T) {
	cfg := runConfig(t, "http://h:1/a{rand:3}", 1, time.Second, HTTPClientRaw)
	cfg.Method, cfg.Body = "PUT", "b{rand:4}c{rand:2}"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.space != 24 {
		t.Fatalf("space %d, want 24", cfg.space)
	}
	tgt := newRawHTTPTarget(&cfg, nil)
	seen := map[string]bool{}
	for d := range cfg.space {
		req := string(tgt.build(nil, d))
		target := req[len("PUT "):strings.Index(req, " HTTP/1.1")]
		body := req[strings.Index(req, "\r\n\r\n")+4:]
		seen[target+" "+body] = true
	}
	if len(seen) != 24 || !seen["/a0 b0c0"] || !seen["/a2 b3c1"] {
		t.Errorf("renders %v", seen)
	}
}

// {rand:LO..HI} takes every value from LO to HI, and no other.
func TestRangeFromLow(t *testing.T) {
	cfg := runConfig(t, "http://h:1/items/{rand:1..3}", 1, time.Second, HTTPClientRaw)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.space != 3 {
		t.Fatalf("space %d, want 3", cfg.space)
	}
	tgt := newRawHTTPTarget(&cfg, nil)
	seen := map[string]bool{}
	for d := range cfg.space {
		req := string(tgt.build(nil, d))
		seen[req[len("GET "):strings.Index(req, " HTTP/1.1")]] = true
	}
	if len(seen) != 3 || !seen["/items/1"] || !seen["/items/3"] {
		t.Errorf("renders %v", seen)
	}
}
