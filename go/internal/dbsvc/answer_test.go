package dbsvc

import (
	"encoding/json"
	"testing"
)

func TestBodies(t *testing.T) {
	it := item{ID: 7, Name: "item-000007", PriceCents: 1234, Stock: 1000000}
	if got := string(itemBody(&it)); got != `{"id":7,"name":"item-000007","price_cents":1234,"stock":1000000}` {
		t.Errorf("itemBody = %s", got)
	}
	ids := []int64{3, 9, 3, 4}
	rows := []item{{ID: 3, Name: "c", PriceCents: 1, Stock: 2}, {}, {ID: 3, Name: "c", PriceCents: 1, Stock: 2}, {}}
	want := `{"items":[{"id":3,"name":"c","price_cents":1,"stock":2},{"id":3,"name":"c","price_cents":1,"stock":2}],"missing":[9,4]}`
	if got := string(itemsBody(ids, rows)); got != want {
		t.Errorf("itemsBody = %s", got)
	}
	if got := string(itemsBody([]int64{5}, []item{{}})); got != `{"items":[],"missing":[5]}` {
		t.Errorf("itemsBody, nothing found = %s", got)
	}
	p := &placed{id: 42, customerID: "c-17", totalCents: 2468, lines: []line{{7, 2}}, prices: []int32{1234}}
	if got := string(orderBody(p)); got != `{"id":42,"customer_id":"c-17","total_cents":2468,"lines":[{"item_id":7,"quantity":2,"price_cents":1234}]}` {
		t.Errorf("orderBody = %s", got)
	}
	if got := string(outboxPayload(p)); got != `{"order_id":42,"customer_id":"c-17","total_cents":2468,"lines":[{"item_id":7,"quantity":2,"price_cents":1234}]}` {
		t.Errorf("outboxPayload = %s", got)
	}
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "tab\there", "é", "<&>", "\x00"} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("appendString(%q) = %s (%v)", s, b, err)
		}
	}
}
