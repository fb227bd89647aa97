// Package rpc holds the rpc pattern's ranking and request checks, as the header of
// proto/recommendations/v1/recommendations.proto specifies them. systems/rpc/ranking.py is the
// reference: both read systems/rpc/ranking_vectors.json in their tests.
//
// The item table and a user's embedding come from SplitMix64; a score is the dot product of the
// two embeddings summed in index order 0..15, each product rounded on its own (an explicit
// float64 conversion forbids a fused multiply-add), so it has the same bits as the numpy
// reference. Top keeps the best `limit` items in a heap held by the answer itself: a call
// allocates nothing but the answer, and nothing when the caller passes one with room.
package rpc

import "fmt"

// The contract's numbers.
const (
	Dim            = 16
	DefaultItems   = 1000
	DefaultSeed    = 1
	MaxUserIDBytes = 64
	MaxLimit       = 1000
	MaxFeatures    = 4096
	MaxPageSize    = 1000
	// FirstCategory and LastCategory bound the Category values an item can have:
	// CATEGORY_BOOKS (1) to CATEGORY_TOOLS (4).
	FirstCategory = 1
	LastCategory  = 4
)

const (
	goldenGamma = 0x9E3779B97F4A7C15
	fnvOffset64 = 0xCBF29CE484222325
	fnvPrime64  = 0x100000001B3
)

// SplitMix64 is Steele, Lea and Flood's generator; the zero value is seeded with 0.
type SplitMix64 struct{ state uint64 }

// NewSplitMix64 returns the generator seeded with seed.
func NewSplitMix64(seed uint64) SplitMix64 { return SplitMix64{state: seed} }

// Next bumps the state, then returns its mix.
func (s *SplitMix64) Next() uint64 {
	s.state += goldenGamma
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// UnitFloat maps a draw to [-1, 1): (x >> 11) * 2^-53 * 2 - 1, every step exact.
func UnitFloat(x uint64) float64 { return float64(x>>11)*0x1p-53*2 - 1 }

// FNV1a64 is the FNV-1a 64-bit hash of s's bytes.
func FNV1a64(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// UserEmbedding is 16 draws of SplitMix64 seeded with FNV-1a 64 of the user id's UTF-8 bytes.
func UserEmbedding(userID string) [Dim]float64 {
	var u [Dim]float64
	g := NewSplitMix64(FNV1a64(userID))
	for j := range u {
		u[j] = UnitFloat(g.Next())
	}
	return u
}

// Table is the item table: read-only once built, safe for concurrent use.
type Table struct {
	emb  [][Dim]float64
	ids  []string
	cats []int32
}

// NewTable builds the table of items items (at least 1) from SplitMix64 seeded with seed: item
// i's embedding is draws 16i to 16i+15, its category 1 + i%4, its id "item-%05d".
func NewTable(items int, seed uint64) *Table {
	if items < 1 {
		panic(fmt.Sprintf("rpc.NewTable: items must be at least 1, not %d", items))
	}
	t := &Table{emb: make([][Dim]float64, items), ids: make([]string, items), cats: make([]int32, items)}
	g := NewSplitMix64(seed)
	for i := range t.emb {
		for j := range t.emb[i] {
			t.emb[i][j] = UnitFloat(g.Next())
		}
		t.ids[i] = fmt.Sprintf("item-%05d", i)
		t.cats[i] = FirstCategory + int32(i%(LastCategory-FirstCategory+1))
	}
	return t
}

// Len is the number of items.
func (t *Table) Len() int { return len(t.emb) }

// ItemID is item i's id.
func (t *Table) ItemID(i int32) string { return t.ids[i] }

// Category is item i's Category value.
func (t *Table) Category(i int32) int32 { return t.cats[i] }

// Embedding is item i's embedding (not to be changed).
func (t *Table) Embedding(i int32) *[Dim]float64 { return &t.emb[i] }

// AppendFeatures appends item i's n features to dst: feature j = float32(embedding[j % 16]).
func (t *Table) AppendFeatures(dst []float32, i int32, n int) []float32 {
	e := &t.emb[i]
	for j := 0; j < n; j++ {
		dst = append(dst, float32(e[j%Dim]))
	}
	return dst
}

// Score is item i's score for the user embedding u.
func (t *Table) Score(i int32, u *[Dim]float64) float64 {
	e := &t.emb[i]
	var s float64
	for j := 0; j < Dim; j++ {
		s += float64(e[j] * u[j]) // the conversion keeps the product's rounding: no FMA
	}
	return s
}

// CategorySet is a set of Category values as bits; the empty set lets every category through.
type CategorySet uint8

// Categories is the set of the given values; ones outside FirstCategory..LastCategory are left
// out (Validate rejects them first).
func Categories[C ~int32](cats []C) CategorySet {
	var s CategorySet
	for _, c := range cats {
		if c >= FirstCategory && c <= LastCategory {
			s |= 1 << c
		}
	}
	return s
}

// Has reports whether an item of category c passes the filter.
func (s CategorySet) Has(c int32) bool { return s == 0 || s&(1<<c) != 0 }

// Ranked is one item of an answer: its index in the table and its score. Its rank is its
// position in the answer plus 1.
type Ranked struct {
	Index int32
	Score float64
}

// better is the answer's order: score descending, then index ascending.
func better(a, b Ranked) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Index < b.Index)
}

// Top is the best limit items of the categories in cats for userID, best first, in dst's
// memory when it has room for min(limit, Len()) items.
func (t *Table) Top(dst []Ranked, userID string, limit int, cats CategorySet) []Ranked {
	dst = dst[:0]
	if limit <= 0 {
		return dst
	}
	if want := min(limit, t.Len()); cap(dst) < want {
		dst = make([]Ranked, 0, want)
	}
	u := UserEmbedding(userID)
	// dst is a heap whose root is the worst item kept so far.
	for i := range t.emb {
		if !cats.Has(t.cats[i]) {
			continue
		}
		r := Ranked{Index: int32(i), Score: t.Score(int32(i), &u)}
		if len(dst) < limit {
			dst = append(dst, r)
			siftUp(dst, len(dst)-1)
		} else if better(r, dst[0]) {
			dst[0] = r
			siftDown(dst, 0, len(dst))
		}
	}
	// Heap sort: the worst goes to the end, then the worst of the rest before it, and so on.
	for n := len(dst) - 1; n > 0; n-- {
		dst[0], dst[n] = dst[n], dst[0]
		siftDown(dst, 0, n)
	}
	return dst
}

func siftUp(h []Ranked, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[p], h[i]) {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []Ranked, i, n int) {
	for {
		worst, l, r := i, 2*i+1, 2*i+2
		if l < n && better(h[worst], h[l]) {
			worst = l
		}
		if r < n && better(h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// Validate is the message naming a request's first invalid field, in field-number order, or ""
// when it is valid: the same text as systems/rpc/ranking.py's validate (INVALID_ARGUMENT over
// gRPC, 400 over REST). It allocates only for the message.
func Validate[C ~int32](userID string, limit int32, categories []C, features, pageSize int32) string {
	if n := len(userID); n < 1 || n > MaxUserIDBytes {
		return fmt.Sprintf("user_id: must be 1 to %d bytes of UTF-8, got %d", MaxUserIDBytes, n)
	}
	if limit < 1 || limit > MaxLimit {
		return fmt.Sprintf("limit: must be 1 to %d, got %d", MaxLimit, limit)
	}
	for _, c := range categories {
		if c < FirstCategory || c > LastCategory {
			return fmt.Sprintf("filters.categories: must be %d to %d (CATEGORY_BOOKS to CATEGORY_TOOLS), got %d",
				FirstCategory, LastCategory, int32(c))
		}
	}
	if features < 0 || features > MaxFeatures {
		return fmt.Sprintf("features: must be 0 to %d, got %d", MaxFeatures, features)
	}
	if pageSize < 0 || pageSize > MaxPageSize {
		return fmt.Sprintf("page_size: must be 0 to %d, got %d", MaxPageSize, pageSize)
	}
	return ""
}
