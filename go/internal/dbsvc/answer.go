package dbsvc

import (
	"strconv"
	"unicode/utf16"

	"github.com/patternbench/patternbench/go/internal/httpjson"
)

// item is one row of items as answered; ID 0 stands for a row not found (ids
// start at 1).
type item struct {
	ID         int64
	Name       string
	PriceCents int32
	Stock      int32
}

// placed is an order written and committed: its lines (ascending item_id)
// carry the prices they were sold at.
type placed struct {
	id         int64
	customerID string
	totalCents int64
	lines      []line
	prices     []int32 // prices[i] is lines[i]'s
}

// Fixed answers, rendered once: 503s come in bursts exactly when there is
// least time to spare. The messages are the Python implementation's.
var (
	healthyBody     = []byte(`{"status":"ok"}`)
	noPathBody      = httpjson.Envelope("not_found", "no such path")
	getOnlyBody     = httpjson.Envelope("method_not_allowed", "only GET is allowed here")
	unreachableBody = httpjson.Envelope("unavailable", "the database is unreachable, retry later")
)

func notFoundItem(id int64) *failure {
	return &failure{404, "not_found", "item " + strconv.FormatInt(id, 10) + ": no such item"}
}

func shortOfStock(id int64, stock, asked int32) *failure {
	return &failure{409, "failed_precondition",
		"item " + strconv.FormatInt(id, 10) + ": " + strconv.Itoa(int(stock)) + " in stock, " +
			strconv.Itoa(int(asked)) + " asked"}
}

// appendString appends s as a JSON string as msgspec writes it (the Python
// implementation's encoder): only ", \ and control characters escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		b = appendEscape(b, rune(c))
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the JSON escape of r, a control character, ", \ or (for
// ASCII-only JSON) any rune past 0x7e.
func appendEscape(b []byte, r rune) []byte {
	switch r {
	case '"', '\\':
		return append(b, '\\', byte(r))
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	}
	if r > 0xFFFF {
		hi, lo := utf16.EncodeRune(r)
		return appendEscape(appendEscape(b, hi), lo)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}

// appendItem appends {"id":..,"name":..,"price_cents":..,"stock":..}.
func appendItem(b []byte, it *item) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, it.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, it.Name)
	b = append(b, `,"price_cents":`...)
	b = strconv.AppendInt(b, int64(it.PriceCents), 10)
	b = append(b, `,"stock":`...)
	b = strconv.AppendInt(b, int64(it.Stock), 10)
	return append(b, '}')
}

// itemBody is GET /items/{id}'s answer.
func itemBody(it *item) []byte {
	return appendItem(make([]byte, 0, 96), it)
}

// itemsBody is GET /items's answer: rows[i] is what ids[i] found (ID 0 when
// nothing); the items in the order asked, then the ids missing.
func itemsBody(ids []int64, rows []item) []byte {
	b := make([]byte, 0, 32+80*len(rows))
	b = append(b, `{"items":[`...)
	first := true
	for i := range rows {
		if rows[i].ID == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendItem(b, &rows[i])
	}
	b = append(b, `],"missing":[`...)
	first = true
	for i := range rows {
		if rows[i].ID != 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendInt(b, ids[i], 10)
	}
	return append(b, "]}"...)
}

// appendOrder appends the order as POST /orders answers it (idKey "id") or as
// the outbox's payload carries it (idKey "order_id").
func appendOrder(b []byte, idKey string, p *placed) []byte {
	b = append(b, `{"`...)
	b = append(b, idKey...)
	b = append(b, `":`...)
	b = strconv.AppendInt(b, p.id, 10)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, p.customerID)
	b = append(b, `,"total_cents":`...)
	b = strconv.AppendInt(b, p.totalCents, 10)
	b = append(b, `,"lines":[`...)
	for i, l := range p.lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"item_id":`...)
		b = strconv.AppendInt(b, l.itemID, 10)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, int64(l.quantity), 10)
		b = append(b, `,"price_cents":`...)
		b = strconv.AppendInt(b, int64(p.prices[i]), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// orderBody is POST /orders's 201 answer.
func orderBody(p *placed) []byte {
	return appendOrder(make([]byte, 0, 96+64*len(p.lines)), "id", p)
}

// outboxPayload is the order.created event's payload.
func outboxPayload(p *placed) []byte {
	return appendOrder(make([]byte, 0, 96+64*len(p.lines)), "order_id", p)
}
