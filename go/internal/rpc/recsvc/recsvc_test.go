package recsvc

import (
	"slices"
	"strings"
	"sync"
	"testing"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"google.golang.org/grpc/codes"
)

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags("x", nil, "127.0.0.1:1", true)
	if err != nil || cfg != (Config{Listen: "127.0.0.1:1", MetricsListen: "127.0.0.1:9464", Items: 1000, Seed: 1, MaxInFlight: 128}) {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = ParseFlags("x", []string{"--listen", "127.0.0.1:0", "--items", "10", "--seed", "18446744073709551615", "--max-in-flight", "1"}, "", false)
	if err != nil || cfg.Items != 10 || cfg.Seed != 1<<64-1 || cfg.MaxInFlight != 1 {
		t.Fatalf("%+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--items", "0"}, "--items: must be 1 to 1000000, got 0"},
		{[]string{"--items", "1000001"}, "--items: must be 1 to 1000000"},
		{[]string{"--max-in-flight", "0"}, "--max-in-flight: must be at least 1, got 0"},
		{[]string{"--seed", "-1"}, "-seed"},
		{[]string{"--listen", "nope"}, `--listen: "nope" is not host:port`},
		{[]string{"--metrics-listen", ""}, `--metrics-listen: "" is not host:port`},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		_, err := ParseFlags("x", tc.args, "127.0.0.1:1", true)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
	if _, err := ParseFlags("x", []string{"--metrics-listen", "127.0.0.1:1"}, "127.0.0.1:1", false); err == nil {
		t.Error("--metrics-listen accepted without metrics")
	}
}

func TestLimiterNeverPassesItsLimit(t *testing.T) {
	l := NewLimiter(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxSeen := int64(0)
	for range 16 {
		wg.Go(func() {
			for range 1000 {
				if l.Admit() {
					mu.Lock()
					maxSeen = max(maxSeen, l.InFlight())
					mu.Unlock()
					l.Release()
				}
			}
		})
	}
	wg.Wait()
	if maxSeen > 3 || l.InFlight() != 0 {
		t.Fatalf("max %d, left %d", maxSeen, l.InFlight())
	}
}

func TestItemsAndPages(t *testing.T) {
	s, err := New(Config{Items: 100, Seed: 1, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	items := s.Items(&pb.RecommendRequest{UserId: "a", Limit: 7, Features: 3})
	if len(items) != 7 {
		t.Fatalf("%d items", len(items))
	}
	for k, it := range items {
		if it.GetRank() != int32(k+1) || len(it.GetFeatures()) != 3 || cap(it.GetFeatures()) != 3 {
			t.Fatalf("item %d: %v", k, it)
		}
	}
	for _, tc := range []struct {
		size  int32
		pages []int
	}{{0, []int{1, 1, 1, 1, 1, 1, 1}}, {1, []int{1, 1, 1, 1, 1, 1, 1}}, {3, []int{3, 3, 1}}, {7, []int{7}}, {1000, []int{7}}} {
		pages := Pages(items, tc.size)
		var got []int
		for i, p := range pages {
			if p.GetPage() != int32(i) {
				t.Fatalf("page %d numbered %d", i, p.GetPage())
			}
			got = append(got, len(p.GetItems()))
		}
		if !slices.Equal(got, tc.pages) {
			t.Errorf("page size %d: %v, want %v", tc.size, got, tc.pages)
		}
	}
	if len(Pages(nil, 5)) != 0 {
		t.Error("pages of nothing")
	}
}

func TestCodes(t *testing.T) {
	for status, want := range map[int]string{200: "OK", 400: "INVALID_ARGUMENT", 413: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
		503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 404: "NOT_FOUND", 500: "INTERNAL", 418: "UNKNOWN"} {
		if got := CodeName(CodeForStatus(status)); got != want {
			t.Errorf("%d: %s, want %s", status, got, want)
		}
	}
	if CodeName(codes.Unauthenticated) != "UNAUTHENTICATED" || CodeName(codes.Code(99)) != "UNKNOWN" {
		t.Error("code names")
	}
}
