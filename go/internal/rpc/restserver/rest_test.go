package restserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/rpctest"
	"github.com/patternbench/patternbench/go/internal/serve"
	"google.golang.org/protobuf/encoding/protojson"
)

func testConfig(items int, seed uint64) recsvc.Config {
	return recsvc.Config{Listen: "127.0.0.1:0", Items: items, Seed: seed, MaxInFlight: 128}
}

// server is a Service running on the serve scaffold.
type server struct {
	*Service
	addr string
	stop context.CancelFunc
	done chan error
}

// shutdown stops the server (as SIGTERM does) and returns Run's result.
func (s *server) shutdown() error {
	s.stop()
	return <-s.done
}

// startTest serves cfg on a free port until the test ends; hooks, when given, set the
// Service's test hooks first.
func startTest(t testing.TB, cfg recsvc.Config, hooks func(*Service)) *server {
	t.Helper()
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hooks != nil {
		hooks(svc)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{Service: svc, addr: addr, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- serve.Run(ctx, []serve.Endpoint{{Addr: addr, Handler: svc}}, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop")
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("not listening")
		}
	}
}

// The REST helpers the rpc servers' tests share (rpctest).
var (
	post      = rpctest.Post
	do        = rpctest.Do
	wantError = rpctest.WantError
)

type envelope = rpctest.Envelope

// lines splits an NDJSON body.
func lines(t testing.TB, body []byte) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		t.Fatalf("the stream does not end with a line end: %q", body[max(0, len(body)-40):])
	}
	return out
}

// jsonRequest is the case's request in protojson's mapping, categories by number.
func jsonRequest(tc *rpctest.Case) string {
	b, err := json.Marshal(map[string]any{
		"userId": tc.Request.UserID, "limit": tc.Request.Limit, "features": tc.Request.Features,
		"pageSize": tc.Request.PageSize, "filters": map[string]any{"categories": tc.Request.Categories},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRankingVectorsOverREST(t *testing.T) {
	cases := rpctest.Cases(t)
	for _, table := range rpctest.Tables(cases) {
		s := startTest(t, testConfig(int(table[0]), table[1]), nil)
		for _, tc := range cases {
			if tc.Items != int(table[0]) || tc.Seed != table[1] {
				continue
			}
			t.Run(tc.Name, func(t *testing.T) {
				resp, body := post(t, s.addr, RecommendPath, jsonRequest(&tc))
				sresp, sbody := post(t, s.addr, StreamPath, jsonRequest(&tc))
				if tc.Error != "" {
					wantError(t, resp, body, 400, "invalid_argument", tc.Error)
					wantError(t, sresp, sbody, 400, "invalid_argument", tc.Error)
					return
				}
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
				var answer pb.RecommendResponse
				if err := protojson.Unmarshal(body, &answer); err != nil {
					t.Fatal(err)
				}
				if answer.GetUserId() != tc.Request.UserID {
					t.Fatalf("userId %q", answer.GetUserId())
				}
				tc.Check(t, answer.GetItems())

				if sresp.StatusCode != 200 || sresp.Header.Get("Content-Type") != "application/x-ndjson" {
					t.Fatalf("stream: %d %s %s", sresp.StatusCode, sresp.Header.Get("Content-Type"), sbody)
				}
				size := max(1, int(tc.Request.PageSize))
				var streamed []*pb.Item
				ls := lines(t, sbody)
				for i, line := range ls {
					var p pb.RecommendPage
					if err := protojson.Unmarshal(line, &p); err != nil {
						t.Fatalf("line %d: %v", i, err)
					}
					if p.GetPage() != int32(i) || len(p.GetItems()) == 0 || len(p.GetItems()) > size || (i < len(ls)-1 && len(p.GetItems()) != size) {
						t.Fatalf("line %d: page %d with %d items", i, p.GetPage(), len(p.GetItems()))
					}
					streamed = append(streamed, p.GetItems()...)
				}
				tc.Check(t, streamed)
			})
		}
	}
}

// The answer's JSON: lowerCamelCase names, enums by name, every field present.
func TestJSONShape(t *testing.T) {
	s := startTest(t, testConfig(1000, 1), nil)
	resp, body := post(t, s.addr, RecommendPath,
		`{"user_id": "alice", "limit": 2, "filters": {"categories": ["CATEGORY_TOOLS", 1]}, "page_size": 0}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil || !bytes.Equal(compact.Bytes(), body) {
		t.Fatalf("not compact JSON: %s", body)
	}
	var answer struct {
		UserID *string          `json:"userId"`
		Items  []map[string]any `json:"items"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&answer); err != nil || answer.UserID == nil || *answer.UserID != "alice" || len(answer.Items) != 2 {
		t.Fatalf("%s: %v", body, err)
	}
	for _, it := range answer.Items {
		if len(it) != 5 || it["features"] == nil || len(it["features"].([]any)) != 0 {
			t.Fatalf("item %v: want itemId, category, score, rank, features (empty)", it)
		}
		if c, _ := it["category"].(string); c != "CATEGORY_TOOLS" && c != "CATEGORY_BOOKS" {
			t.Fatalf("category %v", it["category"])
		}
		if _, ok := it["itemId"].(string); !ok || it["rank"] == nil || it["score"] == nil {
			t.Fatalf("item %v", it)
		}
	}
	// Page 0 says so; nothing matching is an empty 200 stream; and an empty answer has "items": [].
	resp, body = post(t, s.addr, StreamPath, `{"userId": "alice", "limit": 1}`)
	if ls := lines(t, body); resp.StatusCode != 200 || len(ls) != 1 || !bytes.Contains(ls[0], []byte(`"page":`)) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	small := startTest(t, testConfig(1, 1), nil)
	resp, body = post(t, small.addr, StreamPath, `{"userId": "a", "limit": 3, "filters": {"categories": ["CATEGORY_GAMES"]}}`)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("nothing matches: %d %q", resp.StatusCode, body)
	}
	resp, body = post(t, small.addr, RecommendPath, `{"userId": "a", "limit": 3, "filters": {"categories": ["CATEGORY_GAMES"]}}`)
	var empty map[string]any
	if err := json.Unmarshal(body, &empty); err != nil || resp.StatusCode != 200 || len(empty["items"].([]any)) != 0 {
		t.Fatalf("nothing matches: %d %q", resp.StatusCode, body)
	}
}

func TestErrorsAreTheContractsNever500(t *testing.T) {
	s := startTest(t, testConfig(1000, 1), nil)
	huge := `{"userId": "` + strings.Repeat("u", MaxBody) + `", "limit": 1}`
	cases := []struct {
		name, body string
		headers    []string
		status     int
		code, msg  string
	}{
		{"not JSON", "garbage", nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"empty", "", nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"null", "null", nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"an array", "[1]", nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"unknown field", `{"userId": "a", "limit": 1, "nope": 1}`, nil, 400, "invalid_argument", `unknown field "nope"`},
		{"limit a string of letters", `{"userId": "a", "limit": "ten"}`, nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"limit over int32", `{"userId": "a", "limit": 1e12}`, nil, 400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"negative limit", `{"userId": "a", "limit": -1}`, nil, 400, "invalid_argument", "limit: must be 1 to 1000, got -1"},
		{"limit 5000", `{"userId": "a", "limit": 5000}`, nil, 400, "invalid_argument", "limit: must be 1 to 1000, got 5000"},
		{"category 9", `{"userId": "a", "limit": 1, "filters": {"categories": [9]}}`, nil, 400, "invalid_argument",
			"filters.categories: must be 1 to 4 (CATEGORY_BOOKS to CATEGORY_TOOLS), got 9"},
		{"category by an unknown name", `{"userId": "a", "limit": 1, "filters": {"categories": ["CATEGORY_NOPE"]}}`, nil,
			400, "invalid_argument", "body: not a RecommendRequest in JSON"},
		{"over 1 MiB", huge, nil, 413, "resource_exhausted", "body: larger than 1048576 bytes"},
		{"timeout 0", `{"userId": "a", "limit": 1}`, []string{TimeoutHeader, "0"}, 400, "invalid_argument", TimeoutHeader},
		{"timeout not a number", `{"userId": "a", "limit": 1}`, []string{TimeoutHeader, "1.5"}, 400, "invalid_argument", TimeoutHeader},
	}
	for _, tc := range cases {
		for _, path := range []string{RecommendPath, StreamPath} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				resp, body := post(t, s.addr, path, tc.body, tc.headers...)
				t.Logf("%d %s", resp.StatusCode, body)
				wantError(t, resp, body, tc.status, tc.code, tc.msg)
			})
		}
	}
	get := func(path, method string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, "http://"+s.addr+path, nil)
		return do(t, req)
	}
	for _, path := range []string{RecommendPath, StreamPath} {
		resp, body := get(path, http.MethodGet)
		wantError(t, resp, body, 405, "method_not_allowed", "POST")
		if resp.Header.Get("Allow") != "POST" {
			t.Errorf("Allow: %q", resp.Header.Get("Allow"))
		}
	}
	resp, body := get("/v1/nope", http.MethodPost)
	wantError(t, resp, body, 404, "not_found", "")
	resp, body = get("/healthz", http.MethodPost)
	wantError(t, resp, body, 405, "method_not_allowed", "GET")
	if resp, body := get("/healthz", http.MethodGet); resp.StatusCode != 200 || string(body) != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
	// The scaffold's limits apply: a chunked body is refused.
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+RecommendPath, io.MultiReader(strings.NewReader(`{}`)))
	req.ContentLength = -1
	resp, body = do(t, req)
	wantError(t, resp, body, 400, "bad_request", "Transfer-Encoding")
}
