// Package rpctest holds what the rpc servers' tests share: the cases of
// systems/rpc/ranking_vectors.json and the comparison of an answer with one; a REST call and the
// check of an error answer.
package rpctest

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
)

// Case is one case of the vectors file: a table, a request, and the answer or the error.
type Case struct {
	Name    string `json:"name"`
	Items   int    `json:"items"`
	Seed    uint64 `json:"seed"`
	Request struct {
		UserID     string  `json:"user_id"`
		Limit      int32   `json:"limit"`
		Categories []int32 `json:"categories"`
		Features   int32   `json:"features"`
		PageSize   int32   `json:"page_size"`
	} `json:"request"`
	Error      string      `json:"error"`
	ItemIDs    []string    `json:"item_ids"`
	Categories []int32     `json:"categories"`
	Scores     []float64   `json:"scores"`
	Features   [][]float64 `json:"features"`
}

// ScoreTolerance is the contract's: scores agree within 1e-6.
const ScoreTolerance = 1e-6

// Cases reads the vectors file.
func Cases(t testing.TB) []Case {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "../../../../systems/rpc/ranking_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Cases []Case `json:"cases"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	return v.Cases
}

// Proto is the case's request as a message.
func (c *Case) Proto() *pb.RecommendRequest {
	q := c.Request
	req := &pb.RecommendRequest{UserId: q.UserID, Limit: q.Limit, Features: q.Features, PageSize: q.PageSize}
	if len(q.Categories) > 0 {
		req.Filters = &pb.Filters{}
		for _, cat := range q.Categories {
			req.Filters.Categories = append(req.Filters.Categories, pb.Category(cat))
		}
	}
	return req
}

// Check compares an answer's items with the case's: the same items in the same order, ranks
// from 1, scores within ScoreTolerance, features (float32) exactly, as many as asked.
func (c *Case) Check(t testing.TB, items []*pb.Item) {
	t.Helper()
	if len(items) != len(c.ItemIDs) {
		t.Fatalf("%s: got %d items, want %d", c.Name, len(items), len(c.ItemIDs))
	}
	for k, it := range items {
		if it.GetItemId() != c.ItemIDs[k] || int32(it.GetCategory()) != c.Categories[k] || it.GetRank() != int32(k+1) {
			t.Fatalf("%s: item %d is %s (category %d, rank %d), want %s (category %d, rank %d)", c.Name, k,
				it.GetItemId(), it.GetCategory(), it.GetRank(), c.ItemIDs[k], c.Categories[k], k+1)
		}
		if d := math.Abs(it.GetScore() - c.Scores[k]); !(d <= ScoreTolerance) {
			t.Fatalf("%s: item %d score %v, want %v", c.Name, k, it.GetScore(), c.Scores[k])
		}
		if len(it.GetFeatures()) != int(c.Request.Features) {
			t.Fatalf("%s: item %d has %d features, want %d", c.Name, k, len(it.GetFeatures()), c.Request.Features)
		}
		if c.Features != nil {
			for j, f := range it.GetFeatures() {
				if f != float32(c.Features[k][j]) {
					t.Fatalf("%s: item %d feature %d is %v, want %v", c.Name, k, j, f, c.Features[k][j])
				}
			}
		}
	}
}

// Tables are the (items, seed) pairs of the cases.
func Tables(cases []Case) [][2]uint64 {
	var out [][2]uint64
	seen := map[[2]uint64]bool{}
	for _, c := range cases {
		k := [2]uint64{uint64(c.Items), c.Seed}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Post sends body to path with the given headers (name, value, ...).
func Post(t testing.TB, addr, path, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return Do(t, req)
}

// Do sends req and reads its whole answer, failing the test on any error.
func Do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Envelope is the REST error body, {"error": {"code", "message"}}.
type Envelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WantError fails unless the answer is status with the envelope of code, its message
// containing msg.
func WantError(t testing.TB, resp *http.Response, body []byte, status int, code, msg string) {
	t.Helper()
	var e Envelope
	err := json.Unmarshal(body, &e)
	if resp.StatusCode != status || err != nil || e.Error.Code != code || !strings.Contains(e.Error.Message, msg) ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %q, want %d %s containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, status, code, msg)
	}
}
