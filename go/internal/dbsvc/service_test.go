package dbsvc

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// downDSN is a database that refuses every connection: nothing listens on
// port 1.
const downDSN = "postgresql://bench_app@127.0.0.1:1/bench"

// newDown is a service whose database is down.
func newDown(t *testing.T) (*Service, *lines) {
	t.Helper()
	log := new(lines)
	s, err := New(Config{Listen: "127.0.0.1:0", DSN: downDSN, PoolSize: 3, Items: 100,
		AcquireTimeout: 500 * time.Millisecond, StatementTimeout: time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, log
}

type answer struct {
	status int
	header http.Header
	body   string
	code   string // the envelope's, if any
	msg    string
}

func do(t *testing.T, h http.Handler, method, target, body string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, r))
	a := answer{status: w.Code, header: w.Header(), body: w.Body.String()}
	var env struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(w.Body.Bytes(), &env) == nil {
		a.code, a.msg = env.Error.Code, env.Error.Message
	}
	return a
}

// scrape is the value of one series in /metrics ("" when absent).
func scrape(t *testing.T, h http.Handler, series string) string {
	t.Helper()
	a := do(t, h, "GET", "/metrics", "")
	for _, l := range strings.Split(a.body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// Every bad request is refused before the database is asked: with the
// database down, none of them is a 503 and none waits for a connection.
func TestBadRequestsNeverReachTheDatabase(t *testing.T) {
	s, _ := newDown(t)
	line := func(s string) string { return `{"customer_id":"c-1","lines":[` + s + `]}` }
	cases := []struct {
		method, target, body string
		status               int
		code, msg            string
	}{
		{"GET", "/items/abc", "", 400, "invalid_argument", `id: "abc" is not an integer from 1 to 9223372036854775807`},
		{"GET", "/items/0", "", 400, "invalid_argument", `id: "0" is not an integer`},
		{"GET", "/items/-1", "", 400, "invalid_argument", `id: "-1" is not an integer`},
		{"GET", "/items/%201", "", 400, "invalid_argument", `id: " 1" is not an integer`},
		{"GET", "/items/12345678901234567890", "", 400, "invalid_argument", `id: "12345678901234567890" is not an integer`},
		{"GET", "/items/9223372036854775808", "", 400, "invalid_argument", `id: "9223372036854775808" is not an integer`},
		{"GET", "/items/", "", 400, "invalid_argument", `id: "" is not an integer`},
		{"GET", "/items?ids=1,x", "", 400, "invalid_argument", `ids: "x" is not an integer`},
		{"GET", "/items?ids=" + strings.Repeat("7,", 500) + "7", "", 400, "invalid_argument", "ids: more than 500 ids"},
		{"GET", "/items?ids=1&count=1", "", 400, "invalid_argument", "ids: give either ids or count, not both"},
		{"GET", "/items", "", 400, "invalid_argument", "ids: required (or count), none given"},
		{"GET", "/items?count=501", "", 400, "invalid_argument", `count: "501" is not an integer from 1 to 500`},
		{"GET", "/items?ids=1&sort=id", "", 400, "invalid_argument", `"sort": unknown query parameter (ids, count, mode)`},
		{"GET", "/items?ids=1&mode=batch", "", 400, "invalid_argument", `mode: "batch" is neither any nor each`},
		{"POST", "/orders", `{"customer_id":"c","lines":[{"item_id":1,"quantity":1}],"coupon":"x"}`, 400, "invalid_argument", `body: unknown field "coupon"`},
		{"POST", "/orders", line(`{"item_id":1,"quantity":1,"note":1}`), 400, "invalid_argument", `lines[0]: unknown field "note"`},
		{"POST", "/orders", line(`{"item_id":1,"quantity":-2}`), 400, "invalid_argument", "lines[0].quantity: -2 is not an integer from 1 to 1000"},
		{"POST", "/orders", line(`{"item_id":4,"quantity":1},{"item_id":4,"quantity":2}`), 400, "invalid_argument", "lines[1].item_id: 4 is in lines[0] already"},
		{"POST", "/orders", line(``), 400, "invalid_argument", "lines: 0 lines, want 1 to 50"},
		{"POST", "/orders", `{"customer_id":"c","lines":[{"item_id":1,"quantity":1}]`, 400, "invalid_argument", "body: not JSON"},
		{"POST", "/orders", "", 400, "invalid_argument", "body: not JSON"},
		{"POST", "/orders", "hello", 400, "invalid_argument", "body: not JSON"},
		{"POST", "/orders", `{"customer_id":"c","lines":[` + strings.Repeat(" ", MaxBody) + `]}`, 413, "resource_exhausted", "body: larger than 65536 bytes"},
		{"POST", "/items/1", "", 405, "method_not_allowed", `method "POST" not allowed: only GET`},
		{"HEAD", "/items/1", "", 405, "method_not_allowed", `method "HEAD" not allowed: only GET`},
		{"DELETE", "/items", "", 405, "method_not_allowed", `method "DELETE" not allowed: only GET`},
		{"GET", "/orders", "", 405, "method_not_allowed", `method "GET" not allowed: only POST`},
		{"DELETE", "/orders", "", 405, "method_not_allowed", `method "DELETE" not allowed: only POST`},
		{"POST", "/healthz", "", 405, "method_not_allowed", "only GET is allowed here"},
		{"POST", "/metrics", "", 405, "method_not_allowed", "only GET is allowed here"},
		{"GET", "/items/1/2", "", 404, "not_found", "no such path"},
		{"GET", "/item/1", "", 404, "not_found", "no such path"},
		{"GET", "/", "", 404, "not_found", "no such path"},
		{"GET", "/orders/1", "", 404, "not_found", "no such path"},
	}
	for _, c := range cases {
		a := do(t, s, c.method, c.target, c.body)
		name := c.method + " " + c.target
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		if a.status != c.status || a.code != c.code || !strings.HasPrefix(a.msg, c.msg) {
			t.Errorf("%s = %d %s, want %d %s %q", name, a.status, a.body, c.status, c.code, c.msg)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if len(a.msg) > 200 {
			t.Errorf("%s: a message of %d bytes", name, len(a.msg))
		}
		if c.status == 405 {
			want := "GET"
			if strings.HasPrefix(c.target, "/orders") {
				want = "POST"
			}
			if got := a.header.Get("Allow"); got != want {
				t.Errorf("%s: Allow %q, want %q", name, got, want)
			}
		}
	}
	if a := do(t, s, "GET", "/healthz", ""); a.status != 200 || a.body != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", a.status, a.body)
	}
	if v := scrape(t, s, "db_pool_acquire_seconds_count"); v != "0" {
		t.Errorf("db_pool_acquire_seconds_count = %q after bad requests only, want 0", v)
	}
	if v := scrape(t, s, "db_unavailable_total"); v != "0" {
		t.Errorf("db_unavailable_total = %q, want 0", v)
	}
	if v := scrape(t, s, `db_request_duration_seconds_count{code="400",route="items"}`); v != "7" {
		t.Errorf("400s of items counted %q, want 7", v)
	}
	if v := scrape(t, s, `db_request_duration_seconds_count{code="405",route="orders"}`); v != "2" {
		t.Errorf("405s of orders counted %q, want 2", v)
	}
	if v := scrape(t, s, `db_request_duration_seconds_count{code="503",route="item"}`); v != "0" {
		t.Errorf("the known series are not there from the start: %q", v)
	}
	if v := scrape(t, s, `db_request_duration_seconds_count{code="413",route="orders"}`); v != "1" {
		t.Errorf("413s of orders counted %q, want 1", v)
	}
}

// With the database down, every request that needs it is a 503 unavailable
// with Retry-After: 1, counted; the text of pgx's error goes to the log only.
func TestDatabaseDownIs503(t *testing.T) {
	s, log := newDown(t)
	for _, c := range []struct{ method, target, body string }{
		{"GET", "/items/1", ""},
		{"GET", "/items?ids=1,2", ""},
		{"GET", "/items?count=5&mode=each", ""},
		{"POST", "/orders", `{"customer_id":"c-1","lines":[{"item_id":1,"quantity":1}]}`},
	} {
		a := do(t, s, c.method, c.target, c.body)
		if a.status != 503 || a.code != "unavailable" || a.header.Get("Retry-After") != "1" ||
			a.msg != "the database is unreachable, retry later" {
			t.Errorf("%s %s = %d %v %s", c.method, c.target, a.status, a.header, a.body)
		}
	}
	for series, want := range map[string]string{
		"db_unavailable_total":                                        "4",
		"db_pool_acquire_seconds_count":                               "4",
		"db_conn_held_seconds_count":                                  "0",
		`db_pool_connections{state="max"}`:                            "3",
		`db_pool_connections{state="busy"}`:                           "0",
		`db_transactions_total{outcome="commit"}`:                     "0",
		`db_request_duration_seconds_count{code="503",route="items"}`: "2",
	} {
		if v := scrape(t, s, series); v != want {
			t.Errorf("%s = %q, want %q", series, v, want)
		}
	}
	out := log.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "dbpgx: database unavailable: ") {
		t.Errorf("log: %q, want one line for the outage", out)
	}
}

// Over a real connection, a body over 64 KiB is refused 413 whether its length
// is announced or not, and the connection is closed after.
func TestBodyTooLargeOverHTTP(t *testing.T) {
	s, _ := newDown(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	big := `{"customer_id":"c","lines":[` + strings.Repeat(" ", MaxBody) + `]}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(bytes.NewReader([]byte(big))) // no length known: sent chunked
		}
		resp, err := http.Post(srv.URL+"/orders", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), `"resource_exhausted"`) || !resp.Close {
			t.Errorf("chunked=%v: %d %s (close %v)", chunked, resp.StatusCode, b, resp.Close)
		}
	}
}

// A client that sends less body than it announced, or sends it too slowly, is
// answered without the database.
func TestSlowAndShortBodies(t *testing.T) {
	s, _ := newDown(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"c"))
	_ = conn.(*net.TCPConn).CloseWrite() // the client is gone
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(conn)
	deadline := time.Now().Add(2 * time.Second)
	for scrape(t, s, `db_request_duration_seconds_count{code="499",route="orders"}`) != "1" {
		if time.Now().After(deadline) {
			t.Fatal("a body cut short is not counted as 499")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A database that accepts connections and never answers: the acquire gives
// up after --acquire-timeout-ms with a 503 that says so.
func TestAcquireTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	dsn := "postgresql://bench_app@" + ln.Addr().String() + "/bench?connect_timeout=30"
	s, err := New(Config{Listen: "127.0.0.1:0", DSN: dsn, PoolSize: 1, Items: 100,
		AcquireTimeout: 200 * time.Millisecond, StatementTimeout: time.Second}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	t.Cleanup(func() { // first: the pool's connects still waiting end, so Close need not wait
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	start := time.Now()
	a := do(t, s, "GET", "/items/1", "")
	if a.status != 503 || a.msg != "no database connection free within 200 ms, retry later" || a.header.Get("Retry-After") != "1" {
		t.Errorf("GET /items/1 = %d %v %s", a.status, a.header, a.body)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("answered after %v, want about 200 ms", d)
	}
}
