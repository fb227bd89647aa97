package workerpool

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInvalid covers the 400s beyond the vectors, each naming its field.
func TestInvalid(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	big := `{"kernel":"spin","rounds":1,"pad":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, c := range []struct {
		method, query, body string
		field               string // the message's first word
	}{
		{"POST", "", `kernel=spin&rounds=1`, "body:"},
		{"POST", "", ``, "body:"},
		{"POST", "", `null`, "body:"},
		{"POST", "", `"spin"`, "body:"},
		{"POST", "", `{"kernel":"spin","rounds":1}{}`, "body:"},
		{"POST", "", `{"kernel":"spin","rounds":1`, "body:"},
		{"POST", "", big, "body:"},
		{"POST", "?rounds=1", `{"kernel":"spin","rounds":1}`, "query:"},
		{"POST", "", `{"kernel":5,"rounds":1}`, "kernel:"},
		{"POST", "", `{"kernel":"SPIN","rounds":1}`, "kernel:"},
		{"POST", "", `{"Kernel":"spin","rounds":1}`, `"Kernel":`},
		{"POST", "", `{"kernel":"spin","rounds":null}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1e3}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1.0}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":[1]}`, "rounds:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"seed":18446744073709551616}`, "seed:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"seed":false}`, "seed:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"size":"0"}`, "size:"},
		{"POST", "", `{"kernel":"spin","rounds":1,"size":-8}`, "size:"},
		{"POST", "", `{"kernel":"hash","rounds":1,"size":0}`, "size:"},
		{"GET", "kernel=spin&rounds=1&seed=%2B1", "", "seed:"},
		{"GET", "kernel=spin&rounds=1&seed=", "", "seed:"},
		{"GET", "kernel=spin&rounds=1&seed=0x10", "", "seed:"},
		{"GET", "kernel=spin&rounds=%201", "", "rounds:"},
		{"GET", "kernel=spin&rounds=1&rounds=2", "", "rounds:"},
		{"GET", "kernel=spin&kernel=hash&rounds=1", "", "kernel:"},
		{"GET", "kernel=spin&rounds=1&size=x", "", "size:"},
		{"GET", "kernel=hash&rounds=1&size=0", "", "size:"},
		{"GET", "kernel=hash&rounds=1&size=1048577", "", "size:"},
		{"GET", "kernel=hash&rounds=1025&size=1048576", "", "size:"},
		{"GET", "kernel=spin&rounds=99999999999999999999999", "", "rounds:"},
		{"GET", "kernel=spin&rounds=1&%zz", "", "query:"},
		{"GET", "kernel=spin&rounds=1&=1", "", `"":`},
		// The order is kernel, seed, rounds, size: the first invalid is named.
		{"GET", "kernel=nope&seed=x&rounds=x&size=x", "", "kernel:"},
		{"GET", "kernel=hash&seed=x&rounds=x&size=x", "", "seed:"},
		{"GET", "kernel=hash&rounds=x&size=x", "", "rounds:"},
		{"POST", "", `{"size":"x","rounds":"x","seed":"x","kernel":"hash"}`, "seed:"},
	} {
		url := base + "/work"
		if c.method == "GET" {
			url += "?" + c.query
		} else {
			url += c.query
		}
		var body []byte
		if c.method == "POST" {
			body = []byte(c.body)
		}
		r := mustSend(t, c.method, url, body)
		var env struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(r.body, &env)
		if r.status != 400 || env.Error.Code != "invalid_argument" || !strings.HasPrefix(env.Error.Message, c.field+" ") {
			t.Errorf("%s %s %.80q: %d %.200s, want 400 naming %s", c.method, c.query, c.body, r.status, r.body, c.field)
		}
	}
}

// TestValid covers accepted edge cases beyond the vectors.
func TestValid(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 10 * time.Second}, nil)
	padded := `{"kernel":"spin","rounds":1}`
	padded += strings.Repeat(" ", MaxBody-len(padded)) // exactly 64 KiB
	for _, c := range []struct {
		method, query, body, want string
	}{
		{"POST", "", padded, `{"kernel":"spin","seed":0,"rounds":1,"size":0,"output":"` + Spin(0, 1) + `"}`},
		{"POST", "", `{"kernel":"spin","seed":18446744073709551615,"rounds":3,"size":12}`,
			`{"kernel":"spin","seed":18446744073709551615,"rounds":3,"size":12,"output":"` + Spin(1<<64-1, 3) + `"}`},
		{"POST", "", `{"kernel":"spin","seed":-0,"rounds":0}`, `{"kernel":"spin","seed":0,"rounds":0,"size":0,"output":"` + Spin(0, 0) + `"}`},
		{"POST", "", `{"rounds":2,"size":1048576,"kernel":"hash"}`,
			`{"kernel":"hash","seed":0,"rounds":2,"size":1048576,"output":"` + Hash(0, 2, 1<<20) + `"}`},
		{"GET", "?kernel=spin&rounds=0010&seed=007", "", `{"kernel":"spin","seed":7,"rounds":10,"size":0,"output":"` + Spin(7, 10) + `"}`},
	} {
		var body []byte
		if c.method == "POST" {
			body = []byte(c.body)
		}
		r := mustSend(t, c.method, base+"/work"+c.query, body)
		if r.status != 200 || string(r.body) != c.want {
			t.Errorf("%s %s %.60q: %d %s\nwant %s", c.method, c.query, c.body, r.status, r.body, c.want)
		}
	}
	// Exactly 1 GiB to hash is allowed; checked without hashing it.
	if q, err := parseQuery("kernel=hash&rounds=1024&size=1048576"); err != nil || q.Rounds*q.Size != MaxHashed {
		t.Errorf("1 GiB: %+v %v", q, err)
	}
}

// TestSlowBody: a POST body that has not arrived by the deadline is a 504,
// and a body that did arrive leaves the connection usable for the next
// request (the read deadline is cleared).
func TestSlowBody(t *testing.T) {
	_, base := startService(t, Config{Workers: 1, Queue: 0, Timeout: 100 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"kernel":"spin","rounds":1}`
	fmt.Fprintf(conn, "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != spinAnswer(0, 1) {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	time.Sleep(200 * time.Millisecond) // past the first request's read deadline
	fmt.Fprintf(conn, "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body)+1, body[:10])
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || !strings.Contains(string(b), `"code":"deadline_exceeded"`) {
		t.Errorf("body never completed: %d %s, want 504", resp.StatusCode, b)
	}
}
