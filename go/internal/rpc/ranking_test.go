package rpc

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/patternbench/patternbench/go/internal/rpc/rpctest"
)

// vectorFile is systems/rpc/ranking_vectors.json, written by the Python reference.
type vectorFile struct {
	FNV1a64 map[string]string `json:"fnv1a64"`
	Item0   []float64         `json:"item_0_embedding"`
	Item999 []float64         `json:"item_999_embedding"`
	Cases   []rpctest.Case    `json:"cases"`
}

// scoreTolerance is the contract's: scores agree within 1e-6.
const scoreTolerance = 1e-6

func readVectors(t *testing.T) vectorFile {
	t.Helper()
	data, err := os.ReadFile("../../../systems/rpc/ranking_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	return v
}

func TestRankingVectors(t *testing.T) {
	v := readVectors(t)
	tables := map[[2]uint64]*Table{}
	ranked := 0
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			q := c.Request
			got := Validate(q.UserID, q.Limit, q.Categories, q.Features, q.PageSize)
			if got != c.Error {
				t.Fatalf("Validate: got %q, want %q", got, c.Error)
			}
			if c.Error != "" {
				return
			}
			ranked++
			key := [2]uint64{uint64(c.Items), c.Seed}
			if tables[key] == nil {
				tables[key] = NewTable(c.Items, c.Seed)
			}
			table := tables[key]
			answer := table.Top(nil, q.UserID, int(q.Limit), Categories(q.Categories))
			if len(answer) != len(c.ItemIDs) {
				t.Fatalf("got %d items, want %d", len(answer), len(c.ItemIDs))
			}
			for k, r := range answer {
				if id := table.ItemID(r.Index); id != c.ItemIDs[k] {
					t.Fatalf("rank %d: got %s, want %s", k+1, id, c.ItemIDs[k])
				}
				if cat := table.Category(r.Index); cat != c.Categories[k] {
					t.Errorf("rank %d: category %d, want %d", k+1, cat, c.Categories[k])
				}
				if d := math.Abs(r.Score - c.Scores[k]); d > scoreTolerance {
					t.Errorf("rank %d: score %v, want %v (off by %g)", k+1, r.Score, c.Scores[k], d)
				}
				if q.Features == 0 {
					continue
				}
				features := table.AppendFeatures(nil, r.Index, int(q.Features))
				for j, f := range features {
					if want := float32(c.Features[k][j]); f != want {
						t.Errorf("rank %d feature %d: got %v, want %v", k+1, j, f, want)
					}
				}
			}
		})
	}
	if ranked == 0 {
		t.Error("no case ranks anything")
	}
}

func TestTableMatchesVectorEmbeddings(t *testing.T) {
	v := readVectors(t)
	table := NewTable(DefaultItems, DefaultSeed)
	for _, c := range []struct {
		index int32
		want  []float64
	}{{0, v.Item0}, {999, v.Item999}} {
		if got := table.Embedding(c.index); len(c.want) != Dim || !equalFloats(got[:], c.want) {
			t.Errorf("item %d: got %v, want %v", c.index, got, c.want)
		}
	}
	for user, hex := range v.FNV1a64 {
		if got := fmt.Sprintf("%016x", FNV1a64(user)); got != hex {
			t.Errorf("FNV1a64(%q) = %s, want %s", user, got, hex)
		}
	}
}

func equalFloats(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestSplitMix64KnownValues(t *testing.T) {
	// The first five outputs for seed 1234567, as published with the algorithm (Rosetta Code,
	// "Pseudo-random numbers/Splitmix64").
	want := []uint64{
		6457827717110365317, 3203168211198807973, 9817491932198370423,
		4593380528125082431, 16408922859458223821,
	}
	g := NewSplitMix64(1234567)
	for i, w := range want {
		if got := g.Next(); got != w {
			t.Errorf("draw %d: got %d, want %d", i, got, w)
		}
	}
}

func TestFNV1a64KnownValues(t *testing.T) {
	// The FNV reference test vectors (also hash/fnv's golden values).
	for s, want := range map[string]uint64{
		"":       0xcbf29ce484222325,
		"a":      0xaf63dc4c8601ec8c,
		"ab":     0x089c4407b545986a,
		"abc":    0xe71fa2190541574b,
		"foobar": 0x85944171f73967e8,
	} {
		if got := FNV1a64(s); got != want {
			t.Errorf("FNV1a64(%q) = %#x, want %#x", s, got, want)
		}
	}
	for _, s := range []string{"alice", "zoë-🙂", "item-00042"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := FNV1a64(s), h.Sum64(); got != want {
			t.Errorf("FNV1a64(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}

func TestUnitFloatRange(t *testing.T) {
	if got := UnitFloat(0); got != -1 {
		t.Errorf("UnitFloat(0) = %v, want -1", got)
	}
	if got, want := UnitFloat(math.MaxUint64), 1-0x1p-52; got != want {
		t.Errorf("UnitFloat(max) = %v, want %v", got, want)
	}
	if got := UnitFloat(1 << 63); got != 0 {
		t.Errorf("UnitFloat(2^63) = %v, want 0", got)
	}
}

// TestTopMatchesSort checks the heap against a full sort, for every limit shape and filter.
func TestTopMatchesSort(t *testing.T) {
	table := NewTable(257, 99)
	for _, user := range []string{"u1", "u2", "someone else"} {
		for _, limit := range []int{1, 2, 3, 64, 100, 256, 257, 1000} {
			for _, cats := range []CategorySet{0, Categories([]int32{2}), Categories([]int32{1, 4})} {
				got := table.Top(nil, user, limit, cats)
				want := sortedTop(table, user, limit, cats)
				if len(got) != len(want) {
					t.Fatalf("%s limit %d cats %b: %d items, want %d", user, limit, cats, len(got), len(want))
				}
				for k := range got {
					if got[k] != want[k] {
						t.Fatalf("%s limit %d cats %b rank %d: got %+v, want %+v",
							user, limit, cats, k+1, got[k], want[k])
					}
				}
			}
		}
	}
}

func sortedTop(table *Table, user string, limit int, cats CategorySet) []Ranked {
	u := UserEmbedding(user)
	var all []Ranked
	for i := range int32(table.Len()) {
		if cats.Has(table.Category(i)) {
			all = append(all, Ranked{Index: i, Score: table.Score(i, &u)})
		}
	}
	sort.Slice(all, func(a, b int) bool { return better(all[a], all[b]) })
	return all[:min(limit, len(all))]
}

func TestTopTiesByIndex(t *testing.T) {
	table := NewTable(40, 3)
	for i := range table.emb {
		table.emb[i] = table.emb[0] // every score ties
	}
	got := table.Top(nil, "tied", 7, Categories([]int32{3}))
	for k, r := range got {
		if want := int32(2 + 4*k); r.Index != want {
			t.Fatalf("rank %d: item %d, want %d (ties go by index)", k+1, r.Index, want)
		}
	}
	if len(got) != 7 {
		t.Fatalf("got %d items, want 7", len(got))
	}
}

func TestTopAllocatesOnlyTheAnswer(t *testing.T) {
	table := NewTable(DefaultItems, DefaultSeed)
	dst := make([]Ranked, 0, MaxLimit)
	if n := testing.AllocsPerRun(20, func() { dst = table.Top(dst, "alice", MaxLimit, 0) }); n != 0 {
		t.Errorf("Top into a slice with room: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { _ = table.Top(nil, "alice", 10, Categories([]int32{1, 2})) }); n != 1 {
		t.Errorf("Top into nil: %v allocations, want 1 (the answer)", n)
	}
	cats := []int32{1, 2, 3, 4}
	if n := testing.AllocsPerRun(20, func() { _ = Validate("alice", 10, cats, 4096, 1000) }); n != 0 {
		t.Errorf("Validate of a valid request: %v allocations, want 0", n)
	}
}

func TestValidateAcceptsTheLimits(t *testing.T) {
	for _, c := range []struct {
		user                      string
		limit, features, pageSize int32
	}{
		{"a", 1, 0, 0},
		{string(make([]byte, MaxUserIDBytes)), MaxLimit, MaxFeatures, MaxPageSize},
	} {
		if msg := Validate(c.user, c.limit, []int32{FirstCategory, LastCategory}, c.features, c.pageSize); msg != "" {
			t.Errorf("%+v: %s", c, msg)
		}
	}
}

func TestTopLimitZeroAndFeatures(t *testing.T) {
	table := NewTable(5, 1)
	if got := table.Top(nil, "a", 0, 0); len(got) != 0 {
		t.Errorf("limit 0: got %d items", len(got))
	}
	f := table.AppendFeatures(nil, 3, 33)
	for j, x := range f {
		if want := float32(table.Embedding(3)[j%Dim]); x != want {
			t.Fatalf("feature %d: got %v, want %v", j, x, want)
		}
	}
	if len(f) != 33 {
		t.Fatalf("got %d features, want 33", len(f))
	}
}
