package codec

import (
	"errors"
	"testing"
)

func TestParseHandler(t *testing.T) {
	got, ok, err := ParseHandler(" 10, 16")
	if err != nil || !ok || got != (Request{Limit: 10, Features: 16}) {
		t.Errorf("ParseHandler = %+v, %v, %v; want 10 items of 16 features", got, ok, err)
	}
	if _, ok, err := ParseHandler(""); ok || err != nil {
		t.Errorf(`ParseHandler("") = %v, %v; want no handler benchmark and no error`, ok, err)
	}
	for _, bad := range []string{"10", "10,16,1", "0,16", "10,-1", "1001,16", "10,4097", "a,b"} {
		if _, _, err := ParseHandler(bad); !errors.Is(err, ErrHandler) {
			t.Errorf("ParseHandler(%q) error = %v, want ErrHandler", bad, err)
		}
	}
}

func TestEveryHandlerAnswersTheServicesMessage(t *testing.T) {
	for _, shape := range []Request{{Limit: 10, Features: 16}, {Limit: 3, Features: 0}} {
		if err := sameAnswers(Handlers(), shape); err != nil {
			t.Errorf("%+v: %v", shape, err)
		}
	}
}

func TestHandlerRequestsGoThroughDistinctUsers(t *testing.T) {
	ids := UserIDs()
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	if len(ids) != Users || len(seen) != Users {
		t.Errorf("UserIDs: %d ids, %d distinct; want %d distinct", len(ids), len(seen), Users)
	}
	for _, h := range Handlers() {
		requests, err := h.Requests(Request{Limit: 2, Features: 1})
		if err != nil || len(requests) != Users {
			t.Fatalf("%s: %d requests, %v", h.Codec, len(requests), err)
		}
		if _, err := h.Handle([]byte("not a request")); err == nil {
			t.Errorf("%s: a malformed request was answered", h.Codec)
		}
	}
}
