package httpjson

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestWriteSendsTheBodyWithItsLength(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 418, []byte(`{"a":1}`))
	if rec.Code != 418 || rec.Body.String() != `{"a":1}` ||
		rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Content-Length") != "7" {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestEnvelopeEscapesTheMessage(t *testing.T) {
	b := Envelope("invalid_argument", "rounds: \"x\"\n is not <an> integer")
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Code != "invalid_argument" || e.Error.Message != "rounds: \"x\"\n is not <an> integer" {
		t.Fatalf("round trip: %+v", e)
	}
}
