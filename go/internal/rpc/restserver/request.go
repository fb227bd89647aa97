package restserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"github.com/patternbench/patternbench/go/internal/rpc/recsvc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// MaxBody is the largest request body accepted: 1 MiB, as over gRPC.
const MaxBody = 1 << 20

// TimeoutHeader carries a call's deadline in ms from its arrival: the REST twin of grpc-timeout.
const TimeoutHeader = "Request-Timeout-Ms"

// maxTimeoutMs is the largest TimeoutHeader value: 8 digits, as grpc-timeout's.
const maxTimeoutMs = 99_999_999

// JSON mapping options. A request is protojson's mapping of RecommendRequest, field names in
// lowerCamelCase or as in the .proto, enums by name or number; an unknown field is an error. An
// answer has lowerCamelCase names, enums by name, and every field, default values included
// (EmitUnpopulated), so that its shape never depends on its values.
var (
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: false}
	marshalJSON   = protojson.MarshalOptions{EmitUnpopulated: true}
)

// Unmarshal reads a message in protojson's mapping as go-rest reads a body: unknown fields
// refused.
func Unmarshal(body []byte, m proto.Message) error {
	return unmarshalJSON.Unmarshal(body, m)
}

// Marshal appends m's JSON to dst without whitespace, as go-rest answers. protojson adds spaces at random (the
// same in every answer of one build, different from build to build) so that no one relies on
// its bytes; compacting makes the answer's size depend on its content alone, as the Python
// implementations' (json.dumps with separators=(",", ":")) does.
func Marshal(dst []byte, m proto.Message) ([]byte, error) {
	buf := spacedPool.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 1<<20 { // a rare huge answer's buffer is left to the collector
			spacedPool.Put(buf)
		}
	}()
	spaced, err := marshalJSON.MarshalAppend((*buf)[:0], m)
	*buf = spaced
	if err != nil {
		return dst, err
	}
	out := bytes.NewBuffer(dst)
	if err := json.Compact(out, spaced); err != nil {
		return dst, err
	}
	return out.Bytes(), nil
}

var spacedPool = sync.Pool{New: func() any { return new([]byte) }}

// A Failure is an error answer: its status and envelope code and message. The edge
// (go/internal/edge) answers the same failures for the same requests.
type Failure struct {
	Status        int
	Code, Message string
}

var (
	errTooLarge = &Failure{http.StatusRequestEntityTooLarge, "resource_exhausted",
		fmt.Sprintf("body: larger than %d bytes", MaxBody)}
	errDeadline = &Failure{http.StatusGatewayTimeout, "deadline_exceeded", "the call's deadline (" + TimeoutHeader + ") passed"}
	errTimeout  = &Failure{http.StatusBadRequest, "invalid_argument",
		fmt.Sprintf("%s: must be an integer from 1 to %d", TimeoutHeader, maxTimeoutMs)}
)

func invalid(message string) *Failure {
	return &Failure{http.StatusBadRequest, "invalid_argument", message}
}

// Deadline is the call's deadline from TimeoutHeader, counted from start; ok is false without
// the header, f the 400 of a malformed one.
func Deadline(r *http.Request, start time.Time) (dl time.Time, ok bool, f *Failure) {
	values := r.Header.Values(TimeoutHeader)
	if len(values) == 0 {
		return time.Time{}, false, nil
	}
	if len(values) > 1 {
		return time.Time{}, false, errTimeout
	}
	v := strings.TrimSpace(values[0])
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 1 || ms > maxTimeoutMs || v[0] == '+' {
		return time.Time{}, false, errTimeout
	}
	return start.Add(time.Duration(ms) * time.Millisecond), true, nil
}

// ReadRequest reads and decodes the body, by dl when there is one. The read deadline is
// cleared once the body has arrived, for the connection's next request; after a failed read it
// stays, so that net/http's attempt to discard the rest fails at once.
func ReadRequest(w http.ResponseWriter, r *http.Request, dl time.Time) (*pb.RecommendRequest, *Failure) {
	if r.ContentLength > MaxBody {
		w.Header()["Connection"] = []string{"close"}
		return nil, errTooLarge
	}
	rc := http.NewResponseController(w)
	if !dl.IsZero() {
		_ = rc.SetReadDeadline(dl)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		w.Header()["Connection"] = []string{"close"}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errTooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errDeadline
		}
		return nil, invalid(shorten("body: " + err.Error()))
	}
	if !dl.IsZero() {
		_ = rc.SetReadDeadline(time.Time{})
	}
	req := new(pb.RecommendRequest)
	if err := Unmarshal(body, req); err != nil {
		return nil, invalid(shorten("body: not a RecommendRequest in JSON: " + recsvc.ProtoErrText(err)))
	}
	return req, nil
}

// shorten bounds a message that may quote the body.
func shorten(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
