package dbsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDSNEnv names the database the tests below run against: a seeded bench
// database (systems/db/README.md, "The database"), as bench_app. They write
// orders and take stock (bench_reset() undoes it).
const TestDSNEnv = "PATTERNBENCH_TEST_DSN"

// live is the service on the database of $PATTERNBENCH_TEST_DSN and a
// connection of the test's own to look at it.
func live(t *testing.T) (*Service, *pgx.Conn, int64) {
	t.Helper()
	dsn := os.Getenv(TestDSNEnv)
	if dsn == "" {
		t.Skip(TestDSNEnv + " is not set: no database to test against")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("%s: %v", TestDSNEnv, err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	var n int64
	if err := conn.QueryRow(ctx, "SELECT max(id) FROM items").Scan(&n); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", DSN: dsn, PoolSize: 4, Items: n,
		AcquireTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, conn, n
}

func seededItem(id int64) string {
	return fmt.Sprintf(`{"id":%d,"name":"item-%06d","price_cents":%d,`, id, id, 100+id*7919%99900)
}

func TestLiveReads(t *testing.T) {
	s, _, n := live(t)
	if a := do(t, s, "GET", "/items/7", ""); a.status != 200 || !strings.HasPrefix(a.body, seededItem(7)) {
		t.Errorf("GET /items/7 = %d %s", a.status, a.body)
	}
	if a := do(t, s, "GET", fmt.Sprint("/items/", n+1), ""); a.status != 404 || a.code != "not_found" {
		t.Errorf("GET /items/%d = %d %s", n+1, a.status, a.body)
	}
	ids := fmt.Sprintf("3,%d,5,3,%d", n+1, n+2)
	anyAns := do(t, s, "GET", "/items?ids="+ids, "")
	eachAns := do(t, s, "GET", "/items?mode=each&ids="+ids, "")
	var got struct {
		Items   []struct{ ID int64 }
		Missing []int64
	}
	if err := json.Unmarshal([]byte(anyAns.body), &got); err != nil || anyAns.status != 200 {
		t.Fatalf("any: %d %s", anyAns.status, anyAns.body)
	}
	if len(got.Items) != 3 || got.Items[0].ID != 3 || got.Items[1].ID != 5 || got.Items[2].ID != 3 ||
		fmt.Sprint(got.Missing) != fmt.Sprint([]int64{n + 1, n + 2}) {
		t.Errorf("any: %s", anyAns.body)
	}
	if eachAns.body != anyAns.body {
		t.Errorf("each and any differ:\n%s\n%s", eachAns.body, anyAns.body)
	}
	for _, mode := range []string{"any", "each"} {
		a := do(t, s, "GET", "/items?count=50&mode="+mode, "")
		if err := json.Unmarshal([]byte(a.body), &got); err != nil || a.status != 200 || len(got.Items) != 50 || len(got.Missing) != 0 {
			t.Errorf("count=50&mode=%s: %d %.200s", mode, a.status, a.body)
		}
	}
}

func TestLiveOrders(t *testing.T) {
	s, conn, n := live(t)
	ctx := context.Background()
	stock := func(id int64) (v int32) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT stock FROM items WHERE id = $1", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	orders := func() (v int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	before7, before3 := stock(7), stock(3)
	a := do(t, s, "POST", "/orders", `{"customer_id":"c-17","lines":[{"item_id":7,"quantity":2},{"item_id":3,"quantity":1}]}`)
	var p struct {
		ID         int64
		TotalCents int64 `json:"total_cents"`
		Lines      []struct{ ItemID, Quantity, PriceCents int64 }
	}
	if err := json.Unmarshal([]byte(a.body), &p); err != nil || a.status != 201 {
		t.Fatalf("POST /orders = %d %s", a.status, a.body)
	}
	p3, p7 := 100+3*7919%99900, 100+7*7919%99900
	want := fmt.Sprintf(`{"id":%d,"customer_id":"c-17","total_cents":%d,"lines":[{"item_id":3,"quantity":1,"price_cents":%d},{"item_id":7,"quantity":2,"price_cents":%d}]}`,
		p.ID, p3+2*p7, p3, p7)
	if a.body != want {
		t.Errorf("201 body:\n%s\nwant\n%s", a.body, want)
	}
	if stock(7) != before7-2 || stock(3) != before3-1 {
		t.Errorf("stock not taken")
	}
	var payload []byte
	var topic string
	if err := conn.QueryRow(ctx, "SELECT topic, payload FROM outbox WHERE order_id = $1", p.ID).Scan(&topic, &payload); err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(payload, &ev); err != nil || topic != "order.created" || ev["order_id"] != float64(p.ID) ||
		ev["total_cents"] != float64(p3+2*p7) || len(ev["lines"].([]any)) != 2 {
		t.Errorf("outbox: %s %s", topic, payload)
	}

	// A shortfall and an unknown item: nothing written.
	count, left, before5 := orders(), stock(1000), stock(5)
	a = do(t, s, "POST", "/orders", fmt.Sprintf(`{"customer_id":"c","lines":[{"item_id":1000,"quantity":%d},{"item_id":5,"quantity":1}]}`, left+1))
	if a.status != 409 || a.code != "failed_precondition" || a.msg != fmt.Sprintf("item 1000: %d in stock, %d asked", left, left+1) {
		t.Errorf("shortfall: %d %s", a.status, a.body)
	}
	a = do(t, s, "POST", "/orders", fmt.Sprintf(`{"customer_id":"c","lines":[{"item_id":5,"quantity":1},{"item_id":%d,"quantity":1}]}`, n+1))
	if a.status != 404 || a.code != "not_found" || !strings.Contains(a.msg, fmt.Sprint(n+1)) {
		t.Errorf("unknown item: %d %s", a.status, a.body)
	}
	if orders() != count || stock(5) != before5 || stock(1000) != left {
		t.Errorf("a refused order wrote something")
	}
	if v := scrape(t, s, `db_transactions_total{outcome="rollback"}`); v != "2" {
		t.Errorf("rollbacks %q, want 2", v)
	}

	// Concurrent orders over the same items, their lines given in any order:
	// all commit, none deadlocks.
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 8 {
				body := fmt.Sprintf(`{"customer_id":"g%d","lines":[{"item_id":%d,"quantity":1},{"item_id":11,"quantity":1},{"item_id":%d,"quantity":1}]}`,
					g, 20-(g+i)%5, 30+(g*i)%7)
				codes <- do(t, s, "POST", "/orders", body).status
			}
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 201 {
			t.Errorf("concurrent order: %d", c)
		}
	}
}

// The pool's connections killed under it: requests get 200 or 503 with
// Retry-After, never anything else, and 200s come back by themselves.
func TestLiveConnectionsLost(t *testing.T) {
	s, conn, _ := live(t)
	ctx := context.Background()
	for range 4 {
		if a := do(t, s, "GET", "/items?ids=1,2,3", ""); a.status != 200 {
			t.Fatalf("warm-up: %d %s", a.status, a.body)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = 'dbpgx' AND usename = current_user AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	ok, unavailable := 0, 0
	for deadline := time.Now().Add(10 * time.Second); ok < 5 && time.Now().Before(deadline); {
		a := do(t, s, "GET", "/items/1", "")
		switch {
		case a.status == 200:
			ok++
		case a.status == 503 && a.header.Get("Retry-After") == "1" && a.code == "unavailable":
			unavailable++
		default:
			t.Fatalf("after losing the connections: %d %s", a.status, a.body)
		}
	}
	if ok < 5 {
		t.Errorf("no recovery: %d 200s, %d 503s", ok, unavailable)
	}
	t.Logf("%d 503s before the pool recovered", unavailable)
}
