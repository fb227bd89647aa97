package codec

import (
	"flag"
	"fmt"
	"testing"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"google.golang.org/protobuf/proto"
)

var (
	benchSizes = flag.String("codec.sizes", "100,1024,65536,1048576",
		"BenchmarkCodec's protobuf sizes in bytes, separated by commas")
	benchHandler = flag.String("codec.handler", "10,16",
		"BenchmarkCodec's handler calls: LIMIT,FEATURES of the request (\"\": none)")
)

// An op is one side of a codec, timed on one message.
type op struct {
	codec, name string
	// run encodes or decodes once.
	run func() error
	// bytes is the size of what it writes (encode) or reads (decode).
	bytes int
}

func ops(m *pb.RecommendResponse, wire, text []byte) []op {
	return []op{
		{"protobuf", "encode", func() error {
			_, err := proto.Marshal(m)
			return err
		}, len(wire)},
		{"protobuf", "decode", func() error {
			return proto.Unmarshal(wire, new(pb.RecommendResponse))
		}, len(wire)},
		{"json", "encode", func() error {
			_, err := MarshalJSON(nil, m)
			return err
		}, len(text)},
		{"json", "decode", func() error {
			_, err := UnmarshalJSON(text)
			return err
		}, len(text)},
	}
}

// BenchmarkCodec times protobuf and go-rest's JSON mapping encoding and decoding one
// RecommendResponse of each size of -codec.sizes (the protobuf size it is built to; see
// ShapeFor). Sub-benchmarks are named size=S/items=I/features=F/codec=C/op=O, which
// bench/studies/codec.py parses; each reports the bytes of its codec's encoding as B/msg.
// Then, unless -codec.handler is "", each server's handler (see Handlers) answers one request
// of that shape a call, a new user each time: handler=recommend/limit=L/features=F/codec=C,
// B/msg the answer's bytes.
// Each encode returns a new slice, as Python's do and as go-rest's answer is (the spaced form
// protojson writes first goes into a reused buffer, as go-rest's pool holds it); each decode
// makes a new message, as a client does.
func BenchmarkCodec(b *testing.B) {
	sizes, err := ParseSizes(*benchSizes)
	if err != nil {
		b.Fatalf("-codec.sizes: %v", err)
	}
	for _, size := range sizes {
		shape, err := ShapeFor(size)
		if err != nil {
			b.Fatal(err)
		}
		m := Message(shape)
		wire, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		text, err := MarshalJSON(nil, m)
		if err != nil {
			b.Fatal(err)
		}
		if err := roundTrips(m, wire, text); err != nil {
			b.Fatalf("size %d: %v", size, err)
		}
		for _, o := range ops(m, wire, text) {
			name := fmt.Sprintf("size=%d/items=%d/features=%d/codec=%s/op=%s",
				size, shape.Items, shape.Features, o.codec, o.name)
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(o.bytes))
				b.ReportAllocs()
				for b.Loop() {
					if err := o.run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(o.bytes), "B/msg")
			})
		}
	}
	benchmarkHandlers(b)
}

// benchmarkHandlers times Handlers on requests of -codec.handler's shape, checked first to
// answer the same message in both encodings.
func benchmarkHandlers(b *testing.B) {
	shape, ok, err := ParseHandler(*benchHandler)
	if err != nil {
		b.Fatalf("-codec.handler: %v", err)
	}
	if !ok {
		return
	}
	handlers := Handlers()
	if err := sameAnswers(handlers, shape); err != nil {
		b.Fatal(err)
	}
	for _, h := range handlers {
		requests, err := h.Requests(shape)
		if err != nil {
			b.Fatal(err)
		}
		first, err := h.Handle(requests[0])
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("handler=recommend/limit=%d/features=%d/codec=%s",
			shape.Limit, shape.Features, h.Codec)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if _, err := h.Handle(requests[k%len(requests)]); err != nil {
					b.Fatal(err)
				}
				k++
			}
			b.ReportMetric(float64(len(first)), "B/msg")
		})
	}
}

// sameAnswers checks that every handler answers the first user's request with the same
// message: limit items of features floats, the service's own answer.
func sameAnswers(handlers []Handler, shape Request) error {
	req := shape.Message(UserIDs()[0])
	want := &pb.RecommendResponse{UserId: req.GetUserId(), Items: service().Items(req)}
	if len(want.GetItems()) != shape.Limit {
		return fmt.Errorf("handler: %d items in the answer, want %d", len(want.GetItems()), shape.Limit)
	}
	for _, h := range handlers {
		data, err := h.Encode(req)
		if err != nil {
			return err
		}
		out, err := h.Handle(data)
		if err != nil {
			return fmt.Errorf("handler %s: %w", h.Codec, err)
		}
		got := new(pb.RecommendResponse)
		if h.Codec == "protobuf" {
			err = proto.Unmarshal(out, got)
		} else {
			got, err = UnmarshalJSON(out)
		}
		if err != nil || !proto.Equal(got, want) {
			return fmt.Errorf("handler %s: the answer is not the service's (%v)", h.Codec, err)
		}
	}
	return nil
}

// roundTrips checks, before anything is timed, that both encodings read back to the message.
func roundTrips(m *pb.RecommendResponse, wire, text []byte) error {
	back := new(pb.RecommendResponse)
	if err := proto.Unmarshal(wire, back); err != nil || !proto.Equal(back, m) {
		return fmt.Errorf("protobuf does not read back to the message (%v)", err)
	}
	fromJSON, err := UnmarshalJSON(text)
	if err != nil || !proto.Equal(fromJSON, m) {
		return fmt.Errorf("JSON does not read back to the message (%v)", err)
	}
	return nil
}
