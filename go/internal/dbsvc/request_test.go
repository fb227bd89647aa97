package dbsvc

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	good := map[string]int64{"1": 1, "7": 7, "007": 7, "9223372036854775807": 1<<63 - 1,
		"0000000000000000001": 1}
	for s, want := range good {
		if got, ok := parseID(s); !ok || got != want {
			t.Errorf("parseID(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "abc", "١",
		"9223372036854775808", "99999999999999999999", "00000000000000000001", "18446744073709551615"} {
		if got, ok := parseID(s); ok {
			t.Errorf("parseID(%q) = %d, want refused", s, got)
		}
	}
}

func TestParseItemsQuery(t *testing.T) {
	good := []struct {
		raw   string
		ids   []int64
		count int
		each  bool
	}{
		{"ids=1,2,3", []int64{1, 2, 3}, 0, false},
		{"ids=5,5&mode=any", []int64{5, 5}, 0, false},
		{"mode=each&ids=9", []int64{9}, 0, true},
		{"count=500", nil, 500, false},
		{"count=1&mode=each", nil, 1, true},
		{"ids=1%2C2", []int64{1, 2}, 0, false}, // the comma escaped
		{"ids=" + strings.Repeat("1,", 499) + "1", slices.Repeat([]int64{1}, 500), 0, false},
	}
	for _, c := range good {
		q, f := parseItemsQuery(c.raw)
		if f != nil || !slices.Equal(q.ids, c.ids) || q.count != c.count || q.each != c.each {
			t.Errorf("parseItemsQuery(%q) = %+v, %v", c.raw, q, f)
		}
	}
	bad := []struct{ raw, message string }{
		{"", "ids: required (or count), none given"},
		{"mode=each", "ids: required (or count), none given"},
		{"&&", "ids: required (or count), none given"},
		{"ids=1&count=2", "ids: give either ids or count, not both"},
		{"ids=", `ids: "" is not an integer from 1 to 9223372036854775807`},
		{"ids", `ids: "" is not an integer from 1 to 9223372036854775807`},
		{"ids=1,,2", `ids: "" is not an integer from 1 to 9223372036854775807`},
		{"ids=1,", `ids: "" is not an integer`},
		{"ids=1,x", `ids: "x" is not an integer`},
		{"ids=1,-2", `ids: "-2" is not an integer`},
		{"ids=0", `ids: "0" is not an integer`},
		{"ids=+1", `ids: " 1" is not an integer`}, // + in a query is a space
		{"ids=%2B1", `ids: "+1" is not an integer`},
		{"ids=%C3%A9", `ids: "\u00e9" is not an integer`},
		{"ids=1%zz", `ids: "1%zz" is not an integer`}, // a bad escape kept
		{"ids=1;count=2", `ids: "1;count=2" is not an integer`},
		{"ids=9223372036854775808", `ids: "9223372036854775808" is not an integer`},
		{"ids=" + strings.Repeat("1,", 500) + "1", "ids: more than 500 ids"},
		{"count=0", `count: "0" is not an integer from 1 to 500`},
		{"count=501", `count: "501" is not an integer from 1 to 500`},
		{"count=x", `count: "x" is not an integer from 1 to 500`},
		{"count=", `count: "" is not an integer from 1 to 500`},
		{"ids=1&mode=all", `mode: "all" is neither any nor each`},
		{"ids=1&mode=", `mode: "" is neither any nor each`},
		{"ids=x&mode=all", `ids: "x" is not an integer`}, // ids before mode
		{"ids=1&limit=3", `"limit": unknown query parameter (ids, count, mode)`},
		{"mode=all&b=1&a=1", `"b": unknown query parameter`}, // in order, before anything else
		// A name quoted: 64 characters of its JSON, then an ellipsis.
		{"ids=1&" + strings.Repeat("z", 300) + "=1", `"` + strings.Repeat("z", 63) + `…: unknown query parameter`},
		{"=1", `"": unknown query parameter`},
		{"ids=1&ids=2", "ids: given more than once"},
		{"count=1&count=2", "count: given more than once"},
		{"ids=1&mode=any&mode=each", "mode: given more than once"},
	}
	for _, c := range bad {
		_, f := parseItemsQuery(c.raw)
		if f == nil || f.status != 400 || f.code != "invalid_argument" || !strings.HasPrefix(f.message, c.message) {
			t.Errorf("parseItemsQuery(%.40q) = %+v, want 400 %q", c.raw, f, c.message)
			continue
		}
		if len(f.message) > 200 {
			t.Errorf("parseItemsQuery(%.40q): message of %d bytes", c.raw, len(f.message))
		}
	}
}

func TestParseOrder(t *testing.T) {
	o, f := parseOrder([]byte(` {"lines": [{"quantity": 2, "item_id": 70}, {"item_id": 7, "quantity": 1000}],
		"customer_id": "c-\ud83d\ude00", "customer_id": "c-17"} `)) // the last of a repeated field
	if f != nil || o.customerID != "c-17" || !slices.Equal(o.lines, []line{{7, 1000}, {70, 2}}) {
		t.Fatalf("valid order: %+v, %v (want lines in ascending item_id)", o, f)
	}
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf(`{"item_id":%d,"quantity":1}`, i+1)
	}
	if o, f := parseOrder([]byte(`{"customer_id":"` + strings.Repeat("é", 64) + `","lines":[` +
		strings.Join(fifty, ",") + `]}`)); f != nil || len(o.lines) != 50 {
		t.Fatalf("64 characters, 50 lines: %v", f)
	}
	if _, f := parseOrder([]byte(`{"customer_id":"c","lines":[{"item_id":9223372036854775807,"quantity":1}]}`)); f != nil {
		t.Fatalf("item_id 2^63-1: %v", f)
	}
	if o, f := parseOrder([]byte(`{"customer_id":"\ud83d\ude00\\ud800","lines":[{"item_id":1,"quantity":1}]}`)); f != nil || o.customerID != "😀\\ud800" {
		t.Fatalf("a surrogate pair and an escaped backslash: %+v %v", o, f)
	}
	if _, f := parseOrder([]byte(`{"customer_id":"c","lines":[{"item_id":1,"quantity":1}]}` + strings.Repeat(" ", MaxBody))); f == nil || f.status != 413 {
		t.Fatalf("over 64 KiB: %v", f)
	}

	line := func(s string) string { return `{"customer_id":"c-1","lines":[` + s + `]}` }
	bad := []struct{ body, message string }{
		{``, "body: not JSON"},
		{`{`, "body: not JSON"},
		{"\xff", "body: not JSON: not UTF-8"},
		{`{"customer_id":"c","lines":[]} x`, "body: not JSON"},
		{`[]`, "body: not a JSON object but an array"},
		{`null`, "body: not a JSON object but null"},
		{` "x"`, "body: not a JSON object but a string"},
		{`{"customer_id":"c","lines":[{"item_id":1,"quantity":1}],"note":"x","coupon":1}`, `body: unknown field "note"`},
		{`{"Customer_ID":"c","lines":[{"item_id":1,"quantity":1}]}`, `body: unknown field "Customer_ID"`},
		{`{"lines":[],"x":1}`, `body: unknown field "x"`}, // unknown fields first
		{`{"lines":[{"item_id":1,"quantity":1}]}`, "customer_id: required"},
		{`{"customer_id":"c"}`, "lines: required"},
		{`{"customer_id":"","lines":[{"item_id":1,"quantity":1}]}`, "customer_id: 0 characters, want 1 to 64"},
		{`{"customer_id":"` + strings.Repeat("x", 65) + `","lines":[]}`, "customer_id: 65 characters, want 1 to 64"},
		{`{"customer_id":17,"lines":[]}`, "customer_id: not a string but a number"},
		{`{"customer_id":null,"lines":[]}`, "customer_id: not a string but null"},
		{`{"customer_id":"a\u0000b","lines":[{"item_id":1,"quantity":1}]}`, `customer_id: "a\u0000b" holds a NUL or a lone surrogate`},
		{`{"customer_id":"a\ud800b","lines":[{"item_id":1,"quantity":1}]}`, `customer_id: "a\ufffdb" holds a NUL or a lone surrogate`},
		{`{"customer_id":"\udc00","lines":[{"item_id":1,"quantity":1}]}`, `customer_id: "\ufffd" holds a NUL or a lone surrogate`},
		{line(``), "lines: 0 lines, want 1 to 50"},
		{`{"customer_id":"c","lines":{}}`, "lines: not an array but an object"},
		{`{"customer_id":"c","lines":null}`, "lines: not an array but null"},
		{line(strings.Repeat(`{"item_id":1,"quantity":1},`, 50) + `{"item_id":1,"quantity":1}`), "lines: 51 lines, want 1 to 50"},
		{line(`7`), "lines[0]: not an object but a number"},
		{line(`{"item_id":1,"quantity":1},[]`), "lines[1]: not an object but an array"},
		{line(`{"item_id":1,"quantity":1},{"item_id":2,"quantity":1,"price_cents":1}`), `lines[1]: unknown field "price_cents"`},
		{line(`{"quantity":1}`), "lines[0].item_id: required"},
		{line(`{"item_id":1}`), "lines[0].quantity: required"},
		{line(`{"item_id":0,"quantity":1}`), "lines[0].item_id: 0 is not an integer from 1 to 9223372036854775807"},
		{line(`{"item_id":-3,"quantity":1}`), "lines[0].item_id: -3 is not an integer"},
		{line(`{"item_id":"7","quantity":1}`), `lines[0].item_id: "7" is not an integer`},
		{line(`{"item_id":7.0,"quantity":1}`), "lines[0].item_id: 7.0 is not an integer"},
		{line(`{"item_id":true,"quantity":1}`), "lines[0].item_id: true is not an integer"},
		{line(`{"item_id":[1, 2],"quantity":1}`), "lines[0].item_id: [1,2] is not an integer"},
		{line(`{"item_id":9223372036854775808,"quantity":1}`), "lines[0].item_id: 9223372036854775808 is not an integer"},
		{line(`{"item_id":1,"quantity":-1}`), "lines[0].quantity: -1 is not an integer from 1 to 1000"},
		{line(`{"item_id":1,"quantity":0}`), "lines[0].quantity: 0 is not an integer from 1 to 1000"},
		{line(`{"item_id":1,"quantity":1001}`), "lines[0].quantity: 1001 is not an integer from 1 to 1000"},
		{line(`{"item_id":1,"quantity":2e0}`), "lines[0].quantity: 2e0 is not an integer from 1 to 1000"},
		{line(`{"item_id":1,"quantity":null}`), "lines[0].quantity: null is not an integer from 1 to 1000"},
		{line(`{"item_id":7,"quantity":1},{"item_id":8,"quantity":1},{"item_id":7,"quantity":2}`), "lines[2].item_id: 7 is in lines[0] already"},
		{line(`{"item_id":7,"quantity":1},{"item_id":7,"quantity":1},{"item_id":8,"quantity":0}`), "lines[2].quantity: 0 is not"}, // every line before duplicates
	}
	for _, c := range bad {
		_, f := parseOrder([]byte(c.body))
		if f == nil || f.status != 400 || f.code != "invalid_argument" || !strings.HasPrefix(f.message, c.message) {
			t.Errorf("parseOrder(%.60q) = %+v, want 400 %q", c.body, f, c.message)
		} else if len(f.message) > 200 {
			t.Errorf("parseOrder(%.60q): message of %d bytes", c.body, len(f.message))
		}
	}
}

func TestQuote(t *testing.T) {
	for s, want := range map[string]string{
		"abc":                    `"abc"`,
		"a\"b\\c\n":              `"a\"b\\c\n"`,
		"é\x7f😀":                 `"\u00e9\u007f\ud83d\ude00"`, // as Python's json.dumps: ASCII only
		"\xff":                   `"\ufffd"`,
		"":                       `""`,
		strings.Repeat("x", 100): `"` + strings.Repeat("x", 63) + "…",
		strings.Repeat("é", 20):  `"` + strings.Repeat("\\u00e9", 10) + `\u0…`,
	} {
		if got := quote(s); got != want {
			t.Errorf("quote(%q) = %s, want %s", s, got, want)
		}
	}
}
