package recsvc

import (
	"context"
	"strings"
	"sync"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc"
)

// Service ranks for both transports: the item table, read-only once built, and a pool of the
// ranking's scratch buffers.
type Service struct {
	table  *rpc.Table
	ranked sync.Pool // *[]rpc.Ranked
}

// New builds the item table of cfg.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{table: rpc.NewTable(cfg.Items, cfg.Seed)}, nil
}

// Check is the INVALID_ARGUMENT (400) message of a request, or "" when it is valid: the text of
// the ranking package's Validate, the same as systems/rpc/ranking.py's.
func Check(req *pb.RecommendRequest) string {
	return rpc.Validate(req.GetUserId(), req.GetLimit(), req.GetFilters().GetCategories(),
		req.GetFeatures(), req.GetPageSize())
}

// Items is the answer to a valid request: the limit best items, best first, rank 1 for the
// first, each with its features. The items' structs and their features each share one
// allocation.
func (s *Service) Items(req *pb.RecommendRequest) []*pb.Item {
	buf, _ := s.ranked.Get().(*[]rpc.Ranked)
	if buf == nil {
		buf = new([]rpc.Ranked)
	}
	ranked := s.table.Top(*buf, req.GetUserId(), int(req.GetLimit()), rpc.Categories(req.GetFilters().GetCategories()))
	n, nf := len(ranked), int(req.GetFeatures())
	items := make([]pb.Item, n)
	ptrs := make([]*pb.Item, n)
	var features []float32
	if nf > 0 {
		features = make([]float32, 0, n*nf)
	}
	for k, r := range ranked {
		it := &items[k]
		it.ItemId = s.table.ItemID(r.Index)
		it.Category = pb.Category(s.table.Category(r.Index))
		it.Score = r.Score
		it.Rank = int32(k + 1)
		if nf > 0 {
			start := len(features)
			features = s.table.AppendFeatures(features, r.Index, nf)
			it.Features = features[start:len(features):len(features)]
		}
		ptrs[k] = it
	}
	*buf = ranked[:0]
	s.ranked.Put(buf)
	return ptrs
}

// Pages splits an answer into the stream's messages: pageSize items each (1 when 0), numbered
// from 0; none at all when items is empty.
func Pages(items []*pb.Item, pageSize int32) []*pb.RecommendPage {
	size := max(1, int(pageSize))
	pages := make([]*pb.RecommendPage, 0, (len(items)+size-1)/size)
	for start := 0; start < len(items); start += size {
		pages = append(pages, &pb.RecommendPage{
			Page:  int32(len(pages)),
			Items: items[start:min(start+size, len(items)):min(start+size, len(items))],
		})
	}
	return pages
}

// Expired reports whether ctx's deadline has passed (true even when the context was cancelled
// for another reason first, as when a gRPC client resets the stream at its own deadline).
func Expired(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// ProtoErrText is a protobuf error's text without its "proto:" prefix (which protobuf-go
// follows at random with a space or a no-break space, to keep callers from matching it).
func ProtoErrText(err error) string {
	return strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
}
