package edge

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "req-1:a.b_c": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "has space": false, "semi;colon": false, "é": false, "a\n": false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v", id, got)
		}
	}
}

func TestNewID(t *testing.T) {
	a, b := newID(), newID()
	if raw, err := hex.DecodeString(a); err != nil || len(raw) != 16 || a == b || !validID(a) {
		t.Errorf("ids %q %q", a, b)
	}
}
