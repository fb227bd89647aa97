package codec

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestShapeForFillsTheSizeWithoutPassingIt(t *testing.T) {
	for _, size := range []int{100, 1024, 65536, 1 << 20} {
		shape, err := ShapeFor(size)
		if err != nil {
			t.Fatal(err)
		}
		if want := (size + ItemBytes - 1) / ItemBytes; shape.Items != want {
			t.Errorf("ShapeFor(%d).Items = %d, want %d", size, shape.Items, want)
		}
		got := proto.Size(Message(shape))
		bigger := proto.Size(Message(Shape{shape.Items, shape.Features + 1}))
		if got > size || bigger <= size {
			t.Errorf("ShapeFor(%d) = %+v: %d bytes, %d with one feature more; want the most "+
				"features at or under the size", size, shape, got, bigger)
		}
	}
}

func TestShapeForRefusesSizesOutOfRange(t *testing.T) {
	for _, size := range []int{0, -1, MaxSize + 1} {
		if _, err := ShapeFor(size); !errors.Is(err, ErrSize) {
			t.Errorf("ShapeFor(%d) error = %v, want ErrSize", size, err)
		}
	}
}

func TestATinySizeStillHasOneItem(t *testing.T) {
	shape, err := ShapeFor(1)
	if err != nil || shape != (Shape{Items: 1, Features: 0}) {
		t.Errorf("ShapeFor(1) = %+v, %v; want one item without features", shape, err)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("100, 1024,65536")
	if err != nil || len(got) != 3 || got[0] != 100 || got[1] != 1024 || got[2] != 65536 {
		t.Errorf("ParseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "100,", "1k", "0", "-5"} {
		if _, err := ParseSizes(bad); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSizes(%q) error = %v, want ErrSize", bad, err)
		}
	}
}

func TestJSONIsCompactAndReadsBack(t *testing.T) {
	m := Message(Shape{Items: 2, Features: 3})
	text, err := MarshalJSON([]byte("prefix:"), m)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := bytes.CutPrefix(text, []byte("prefix:"))
	if !ok || bytes.ContainsAny(body, " \n") {
		t.Fatalf("MarshalJSON = %q, want the compact JSON appended to dst", text)
	}
	if err := roundTrips(m, must(proto.Marshal(m)), body); err != nil {
		t.Error(err)
	}
	// Every field is written, default values included, as go-rest does.
	empty := Message(Shape{Items: 1, Features: 0})
	text, err = MarshalJSON(nil, empty)
	if err != nil || !bytes.Contains(text, []byte(`"features":[]`)) {
		t.Errorf("MarshalJSON of an item without features = %s, %v; want \"features\":[]", text, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
