package contract

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	cases := map[string]bool{
		"sku-42":                true,
		"A":                     true,
		"under_score-dash-09":   true,
		strings.Repeat("x", 64): true,
		"":                      false,
		strings.Repeat("x", 65): false,
		"sku!42":                false,
		"sku/42":                false,
		"ümlaut":                false,
		"space in":              false,
	}
	for id, want := range cases {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
