// Package codec builds the rpc pattern's answers at a chosen encoded size and encodes them as
// the two Go servers do, for BenchmarkCodec (bench/studies/codec.py runs it beside the Python
// suite scenarios/pytest_benchmark/bm_codec.py). BenchmarkCodec also times one call of each
// server's handler in process (handler.go): the application's share of a call's CPU.
//
// A size is a target for the protobuf encoding of a RecommendResponse. Its shape is fixed by one
// rule that the Python suite follows too, so both languages time the same message, byte for
// byte: ceil(size / 16 KiB) items (an item carries at most 4,096 features, 16 KiB of floats),
// each with the most features that keep the protobuf encoding at or under size (0 when even
// none is over). The items are the service's own answer (recsvc) for user "codec" on the default
// table (1,000 items, seed 1).
package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/protobuf/proto"
)

// UserID is the user whose answer is encoded.
const UserID = "codec"

// ItemBytes is the protobuf size an item of the most features comes near: items per message is
// ceil(size / ItemBytes).
const ItemBytes = 4 * rpc.MaxFeatures

// MaxSize is the largest size a message can be built at: the most items of the most features.
const MaxSize = rpc.MaxLimit * ItemBytes

// ErrSize is returned for a size outside 1..MaxSize.
var ErrSize = errors.New("codec: size out of range")

// Shape is a message's items and features per item.
type Shape struct {
	Items, Features int
}

var service = sync.OnceValue(func() *recsvc.Service {
	s, err := recsvc.New(recsvc.Config{Items: rpc.DefaultItems, Seed: rpc.DefaultSeed, MaxInFlight: 1})
	if err != nil {
		panic(err) // the defaults are valid
	}
	return s
})

// Message is the service's answer of that shape.
func Message(s Shape) *pb.RecommendResponse {
	req := &pb.RecommendRequest{UserId: UserID, Limit: int32(s.Items), Features: int32(s.Features)}
	return &pb.RecommendResponse{UserId: UserID, Items: service().Items(req)}
}

// ShapeFor is the shape of a message of about size bytes of protobuf (see the package comment).
func ShapeFor(size int) (Shape, error) {
	if size < 1 || size > MaxSize {
		return Shape{}, fmt.Errorf("%w: %d is not 1 to %d", ErrSize, size, MaxSize)
	}
	items := (size + ItemBytes - 1) / ItemBytes
	fits := func(features int) bool {
		return proto.Size(Message(Shape{items, features})) <= size
	}
	// The largest feature count that fits: the size only grows with it.
	lo, hi := 0, rpc.MaxFeatures
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return Shape{Items: items, Features: lo}, nil
}

// ParseSizes reads a comma-separated list of sizes in bytes ("100,1024").
func ParseSizes(text string) ([]int, error) {
	var sizes []int
	for _, part := range strings.Split(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > MaxSize {
			return nil, fmt.Errorf("%w: %q is not a size of 1 to %d bytes", ErrSize, part, MaxSize)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// MarshalJSON appends m's JSON to dst as go-rest writes it (restserver.Marshal: protojson with
// EmitUnpopulated, compacted).
func MarshalJSON(dst []byte, m proto.Message) ([]byte, error) {
	return restserver.Marshal(dst, m)
}

// UnmarshalJSON reads a RecommendResponse in protojson's mapping, unknown fields refused.
func UnmarshalJSON(data []byte) (*pb.RecommendResponse, error) {
	m := new(pb.RecommendResponse)
	return m, restserver.Unmarshal(data, m)
}
