package expect

import "testing"

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		want, got any
		ok        bool
	}{
		{map[string]any{"a": 1.0, "b": []any{"x"}}, map[string]any{"a": 1.0, "b": []any{"x"}}, true},
		{map[string]any{"m": AnyString}, map[string]any{"m": "anything"}, true},
		{map[string]any{"m": AnyString}, map[string]any{"m": ""}, false},
		{map[string]any{"m": AnyString}, map[string]any{"m": 3.0}, false},
		{map[string]any{"a": 1.0}, map[string]any{"a": 1.0, "extra": true}, false},
		{[]any{1.0, 2.0}, []any{2.0, 1.0}, false},
		{"x", "x", true},
	} {
		if Match(tc.want, tc.got) != tc.ok {
			t.Errorf("Match(%v, %v) != %v", tc.want, tc.got, tc.ok)
		}
	}
}
