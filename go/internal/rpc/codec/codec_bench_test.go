package codec

import (
	"flag"
	"fmt"
	"testing"

	pb "github.com/patternbench/patternbench/go/gen/recommendations/v1"
	"google.golang.org/protobuf/proto"
)

var benchSizes = flag.String("codec.sizes", "100,1024,65536,1048576",
	"BenchmarkCodec's protobuf sizes in bytes, separated by commas")

// An op is one side of a codec, timed on one message.
type op struct {
	codec, name string
	// run encodes or decodes once.
	run func() error
	// bytes is the size of what it writes (encode) or reads (decode).
	bytes int
}

func ops(m *pb.RecommendResponse, wire, text []byte) []op {
	var scratch []byte
	return []op{
		{"protobuf", "encode", func() error {
			_, err := proto.Marshal(m)
			return err
		}, len(wire)},
		{"protobuf", "decode", func() error {
			return proto.Unmarshal(wire, new(pb.RecommendResponse))
		}, len(wire)},
		{"json", "encode", func() error {
			_, err := MarshalJSON(nil, &scratch, m)
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
		var scratch []byte
		text, err := MarshalJSON(nil, &scratch, m)
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
