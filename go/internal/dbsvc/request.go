package dbsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/patternbench/patternbench/go/internal/httpjson"
)

// The contract's limits on one request.
const (
	MaxIDs        = 500      // ids or count of GET /items
	MaxBody       = 64 << 10 // bytes of a POST /orders body
	MaxLines      = 50       // lines of an order
	MaxQuantity   = 1000     // of one line
	MaxCustomerID = 64       // characters (code points) of customer_id
	maxIDDigits   = 19       // 2^63-1 has 19 digits
)

// The messages are systems/db/request.py's, so that the two implementations
// refuse alike: each starts with the field or parameter at fault.
const idRange = "an integer from 1 to 9223372036854775807"

// A failure is an error answer: its status, envelope code and message.
type failure struct {
	status        int
	code, message string
}

func invalid(format string, args ...any) *failure {
	return &failure{http.StatusBadRequest, "invalid_argument", fmt.Sprintf(format, args...)}
}

var errBodyTooLarge = &failure{http.StatusRequestEntityTooLarge, "resource_exhausted",
	fmt.Sprintf("body: larger than %d bytes", MaxBody)}

// parseID reads an item id: 1 to 19 decimal digits (leading zeros allowed),
// from 1 to 2^63-1, nothing else.
func parseID(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxIDDigits {
		return 0, false
	}
	var n uint64 // 19 digits stay below 2^64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n == 0 || n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// parseNamedID reads an id given as name (id in a path, one of ids).
func parseNamedID(name, s string) (int64, *failure) {
	id, ok := parseID(s)
	if !ok {
		return 0, invalid("%s: %s is not %s", name, quote(s), idRange)
	}
	return id, nil
}

// itemsQuery is a validated GET /items: the ids asked (or how many to draw),
// and whether each is read by a query of its own.
type itemsQuery struct {
	ids   []int64
	count int // 0 when the ids were given
	each  bool
}

// parseItemsQuery reads GET /items's query string, its pairs in order as
// aiohttp reads them (split on &, + a space, a bad %-escape kept as is). An
// unknown or repeated parameter is refused first, then ids or count, then mode.
func parseItemsQuery(raw string) (itemsQuery, *failure) {
	var ids, count, mode *string
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, value = unescape(name), unescape(value)
		var slot **string
		switch name {
		case "ids":
			slot = &ids
		case "count":
			slot = &count
		case "mode":
			slot = &mode
		default:
			return itemsQuery{}, invalid("%s: unknown query parameter (ids, count, mode)", quote(name))
		}
		if *slot != nil {
			return itemsQuery{}, invalid("%s: given more than once", name)
		}
		*slot = &value
	}
	var q itemsQuery
	switch {
	case ids == nil && count == nil:
		return itemsQuery{}, invalid("ids: required (or count), none given")
	case ids != nil && count != nil:
		return itemsQuery{}, invalid("ids: give either ids or count, not both")
	case ids != nil:
		n := 1 + strings.Count(*ids, ",")
		if n > MaxIDs {
			return itemsQuery{}, invalid("ids: more than %d ids", MaxIDs)
		}
		q.ids = make([]int64, 0, n)
		for part := range strings.SplitSeq(*ids, ",") {
			id, f := parseNamedID("ids", part)
			if f != nil {
				return itemsQuery{}, f
			}
			q.ids = append(q.ids, id)
		}
	default:
		n, ok := parseID(*count)
		if !ok || n > MaxIDs {
			return itemsQuery{}, invalid("count: %s is not an integer from 1 to %d", quote(*count), MaxIDs)
		}
		q.count = int(n)
	}
	if mode != nil {
		switch *mode {
		case "any":
		case "each":
			q.each = true
		default:
			return itemsQuery{}, invalid("mode: %s is neither any nor each", quote(*mode))
		}
	}
	return q, nil
}

// line is one line of an order.
type line struct {
	itemID   int64
	quantity int32
}

// order is a validated POST /orders body, its lines in ascending item_id.
type order struct {
	customerID string
	lines      []line
}

// parseOrder reads and validates a POST /orders body. Keys are matched
// exactly (encoding/json matches a struct's fields case-insensitively) and in
// the body's order, each value's JSON type is checked, and integers are read
// exactly. Unknown fields are refused first (at each level), then
// customer_id, then the lines one by one, then an item_id given twice.
func parseOrder(body []byte) (order, *failure) {
	if len(body) > MaxBody {
		return order{}, errBodyTooLarge
	}
	if !utf8.Valid(body) {
		return order{}, invalid("body: not JSON: not UTF-8")
	}
	fields, f := object(body, "body", "customer_id", "lines")
	if f != nil {
		return order{}, f
	}
	var o order
	raw := fields.get("customer_id")
	switch {
	case raw == nil:
		return order{}, invalid("customer_id: required")
	case raw[0] != '"':
		return order{}, invalid("customer_id: not a string but %s", httpjson.Kind(raw))
	}
	_ = json.Unmarshal(raw, &o.customerID) // a valid JSON string
	if n := utf8.RuneCountInString(o.customerID); n < 1 || n > MaxCustomerID {
		return order{}, invalid("customer_id: %d characters, want 1 to %d", n, MaxCustomerID)
	}
	if strings.IndexByte(o.customerID, 0) >= 0 || loneSurrogate(raw) {
		// PostgreSQL's text (and jsonb) hold no NUL, and a lone surrogate is no UTF-8.
		return order{}, invalid("customer_id: %s holds a NUL or a lone surrogate", quote(o.customerID))
	}

	raw = fields.get("lines")
	var lines []json.RawMessage
	switch {
	case raw == nil:
		return order{}, invalid("lines: required")
	case raw[0] != '[':
		return order{}, invalid("lines: not an array but %s", httpjson.Kind(raw))
	}
	_ = json.Unmarshal(raw, &lines) // a valid JSON array
	if len(lines) < 1 || len(lines) > MaxLines {
		return order{}, invalid("lines: %d lines, want 1 to %d", len(lines), MaxLines)
	}
	o.lines = make([]line, len(lines))
	for i, rawLine := range lines {
		l, f := parseLine(rawLine, fmt.Sprintf("lines[%d]", i))
		if f != nil {
			return order{}, f
		}
		o.lines[i] = l
	}
	seen := make(map[int64]int, len(lines))
	for i, l := range o.lines {
		if j, dup := seen[l.itemID]; dup {
			return order{}, invalid("lines[%d].item_id: %d is in lines[%d] already", i, l.itemID, j)
		}
		seen[l.itemID] = i
	}
	sortLines(o.lines)
	return o, nil
}

// sortLines sorts lines by ascending item_id (insertion sort: 50 at most).
func sortLines(lines []line) {
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && lines[j].itemID < lines[j-1].itemID; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
}

// parseLine reads one line of an order; where names it in messages.
func parseLine(raw json.RawMessage, where string) (line, *failure) {
	if raw = bytes.TrimSpace(raw); raw[0] != '{' {
		return line{}, invalid("%s: not an object but %s", where, httpjson.Kind(raw))
	}
	fields, f := object(raw, where, "item_id", "quantity")
	if f != nil {
		return line{}, f
	}
	id, f := integer(fields, where, "item_id", math.MaxInt64)
	if f != nil {
		return line{}, f
	}
	q, f := integer(fields, where, "quantity", MaxQuantity)
	if f != nil {
		return line{}, f
	}
	return line{itemID: id, quantity: int32(q)}, nil
}

// integer is the member name of fields: a JSON integer written as one (no
// fraction, no exponent: 2.0 is a float, as Python's json reads it) from 1 to
// high.
func integer(fields members, where, name string, high int64) (int64, *failure) {
	raw := fields.get(name)
	if raw == nil {
		return 0, invalid("%s.%s: required", where, name)
	}
	s := string(raw)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '+' || n < 1 || n > high {
		return 0, invalid("%s.%s: %s is not an integer from 1 to %d", where, name, showJSON(raw), high)
	}
	return n, nil
}

// members are a JSON object's, in the body's order; a name given twice keeps
// its first place and its last value, as Python's json reads it.
type members []member

type member struct {
	name string
	raw  json.RawMessage // trimmed
}

func (ms members) get(name string) json.RawMessage {
	for _, m := range ms {
		if m.name == name {
			return m.raw
		}
	}
	return nil
}

// object decodes raw, which must be a JSON object holding no names but known;
// what names it in messages.
func object(raw []byte, what string, known ...string) (members, *failure) {
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v) // the syntax error
		return nil, invalid("%s: not JSON: %s", what, cut(err.Error()))
	}
	raw = bytes.TrimSpace(raw)
	if raw[0] != '{' {
		return nil, invalid("%s: not a JSON object but %s", what, httpjson.Kind(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	_, _ = dec.Token() // {
	var ms members
	for dec.More() {
		tok, _ := dec.Token()
		name := tok.(string)
		var v json.RawMessage
		_ = dec.Decode(&v) // valid JSON
		v = bytes.TrimSpace(v)
		if i := slices.IndexFunc(ms, func(m member) bool { return m.name == name }); i >= 0 {
			ms[i].raw = v
		} else {
			ms = append(ms, member{name, v})
		}
	}
	for _, m := range ms {
		if !slices.Contains(known, m.name) {
			return nil, invalid("%s: unknown field %s", what, quote(m.name))
		}
	}
	return ms, nil
}
