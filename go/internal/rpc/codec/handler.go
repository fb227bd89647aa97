package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"github.com/patternbench/patternbench/go/internal/rpc/restserver"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// ErrHandler is returned for a request shape outside the service's bounds.
var ErrHandler = errors.New("codec: bad handler request shape")

// Users is how many user ids the handler's requests go through, one a call: each call ranks for
// another user, as under load.
const Users = 1024

// userSpace is the range the ids are drawn from, as the load's user-0 .. user-99999.
const userSpace = 100_000

// Request is a Recommend call's request of limit items with features floats each.
type Request struct {
	Limit, Features int
}

// ParseHandler reads -codec.handler: "LIMIT,FEATURES", or "" for no handler benchmark.
func ParseHandler(text string) (req Request, ok bool, err error) {
	if strings.TrimSpace(text) == "" {
		return Request{}, false, nil
	}
	parts := strings.Split(text, ",")
	if len(parts) != 2 {
		return Request{}, false, fmt.Errorf("%w: %q is not LIMIT,FEATURES", ErrHandler, text)
	}
	limit, err1 := strconv.Atoi(strings.TrimSpace(parts[0]))
	features, err2 := strconv.Atoi(strings.TrimSpace(parts[1]))
	if err1 != nil || err2 != nil || limit < 1 || limit > rpc.MaxLimit || features < 0 ||
		features > rpc.MaxFeatures {
		return Request{}, false, fmt.Errorf("%w: %q: limit must be 1 to %d, features 0 to %d",
			ErrHandler, text, rpc.MaxLimit, rpc.MaxFeatures)
	}
	return Request{Limit: limit, Features: features}, true, nil
}

// UserIDs are the ids the handler's requests go through: Users of them, spread over the load's
// user space.
func UserIDs() []string {
	ids := make([]string, Users)
	for k := range ids {
		ids[k] = "user-" + strconv.Itoa(k*7919%userSpace)
	}
	return ids
}

// Message is r's request for user.
func (r Request) Message(user string) *pb.RecommendRequest {
	return &pb.RecommendRequest{UserId: user, Limit: int32(r.Limit), Features: int32(r.Features)}
}

// A Handler is one call's application work in a server, from the request's bytes to the
// answer's: decode the request, check it, rank, build the items and encode the answer.
type Handler struct {
	// Codec is the encoding: protobuf (go-grpc) or json (go-rest).
	Codec string
	// Encode writes a request as the client sends it.
	Encode func(*pb.RecommendRequest) ([]byte, error)
	// Handle answers one request.
	Handle func(data []byte) ([]byte, error)
}

var errInvalid = errors.New("codec: invalid request")

func answer(req *pb.RecommendRequest) (*pb.RecommendResponse, error) {
	if msg := recsvc.Check(req); msg != "" {
		return nil, fmt.Errorf("%w: %s", errInvalid, msg)
	}
	return &pb.RecommendResponse{UserId: req.GetUserId(), Items: service().Items(req)}, nil
}

// Handlers are the two servers' handlers: go-grpc's work besides grpc-go (its codec decodes the
// request and encodes the answer with proto), and go-rest's besides net/http (protojson both
// ways, the answer compacted, with go-rest's own restserver.Unmarshal and Marshal).
func Handlers() []Handler {
	return []Handler{
		{"protobuf", func(m *pb.RecommendRequest) ([]byte, error) { return proto.Marshal(m) },
			func(data []byte) ([]byte, error) {
				req := new(pb.RecommendRequest)
				if err := proto.Unmarshal(data, req); err != nil {
					return nil, err
				}
				m, err := answer(req)
				if err != nil {
					return nil, err
				}
				return proto.Marshal(m)
			}},
		{"json", func(m *pb.RecommendRequest) ([]byte, error) { return protojson.Marshal(m) },
			func(data []byte) ([]byte, error) {
				req := new(pb.RecommendRequest)
				if err := restserver.Unmarshal(data, req); err != nil {
					return nil, err
				}
				m, err := answer(req)
				if err != nil {
					return nil, err
				}
				return MarshalJSON(nil, m)
			}},
	}
}

// Requests are h's requests of shape r, one per user of UserIDs.
func (h Handler) Requests(r Request) ([][]byte, error) {
	var out [][]byte
	for _, user := range UserIDs() {
		data, err := h.Encode(r.Message(user))
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}
