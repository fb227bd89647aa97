package dbsvc

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The statements. pgx prepares each once per connection and reuses it
// (QueryExecModeCacheStatement, its default), as asyncpg does.
const (
	sqlItem     = `SELECT id, name, price_cents, stock FROM items WHERE id = $1`
	sqlItemsAny = `SELECT id, name, price_cents, stock FROM items WHERE id = ANY($1::bigint[])`
	// Takes the stock of every line whose item has enough, in one statement:
	// the lines come in ascending item_id and the join walks them in that order
	// (a nested loop over unnest into the primary key), so concurrent orders
	// lock their rows in one order and cannot deadlock. A line missing from
	// the answer is an unknown item or a shortfall.
	sqlTakeStock = `UPDATE items AS i SET stock = i.stock - l.quantity
FROM unnest($1::bigint[], $2::integer[]) AS l(item_id, quantity)
WHERE i.id = l.item_id AND i.stock >= l.quantity
RETURNING i.id, i.price_cents`
	// Why the lines sqlTakeStock left out were left out (before a 404 or 409).
	sqlStocks      = `SELECT id, stock FROM items WHERE id = ANY($1::bigint[])`
	sqlInsertOrder = `INSERT INTO orders (customer_id, total_cents) VALUES ($1, $2) RETURNING id`
	sqlInsertLines = `INSERT INTO order_lines (order_id, item_id, quantity, price_cents)
SELECT $1, l.item_id, l.quantity, l.price_cents
FROM unnest($2::bigint[], $3::integer[], $4::integer[]) AS l(item_id, quantity, price_cents)`
	sqlInsertOutbox = `INSERT INTO outbox (order_id, topic, payload) VALUES ($1, 'order.created', $2::jsonb)`
)

// stmtSlack is how long past --statement-timeout-ms the client waits for a
// statement before it gives up on it (and on its connection): the server's
// statement_timeout normally ends it first, with the connection intact; the
// client's deadline is for a server or network that no longer answers.
const stmtSlack = time.Second

// withConn acquires a pooled connection, waiting at most the acquire
// time-out, runs f on it and releases it; the wait and the hold are timed.
// The contexts derive from the service's lifetime, not the request's: a
// client that goes away does not cut a statement (and its connection) short.
func (s *Service) withConn(f func(c *pgxpool.Conn) error) error {
	ctx, cancel := context.WithTimeout(s.base, s.cfg.AcquireTimeout)
	start := time.Now()
	c, err := s.pool.Acquire(ctx)
	acquired := time.Now()
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	s.m.acquire.Observe(acquired.Sub(start).Seconds())
	if err != nil {
		if timedOut && s.base.Err() == nil {
			return acquireTimeout{err}
		}
		return err
	}
	defer func() {
		c.Release() // a broken connection, or one left in a transaction, is destroyed
		s.m.held.Observe(time.Since(acquired).Seconds())
	}()
	return f(c)
}

// acquireTimeout is the error of an acquire that waited past
// --acquire-timeout-ms: every connection busy, or a new one slow to connect.
type acquireTimeout struct{ err error }

func (e acquireTimeout) Error() string { return "acquire timed out: " + e.err.Error() }
func (e acquireTimeout) Unwrap() error { return e.err }

// stmt is the context of one statement.
func (s *Service) stmt() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.base, s.cfg.StatementTimeout+stmtSlack)
}

// observe times one statement of q that started at start.
func (s *Service) observe(q query, start time.Time) {
	s.m.query[q].Observe(time.Since(start).Seconds())
}

// readItem reads one row on c; found is false when there is none.
func (s *Service) readItem(c *pgxpool.Conn, q query, id int64, it *item) (found bool, err error) {
	ctx, cancel := s.stmt()
	start := time.Now()
	err = c.QueryRow(ctx, sqlItem, id).Scan(&it.ID, &it.Name, &it.PriceCents, &it.Stock)
	s.observe(q, start)
	cancel()
	if errors.Is(err, pgx.ErrNoRows) {
		*it = item{}
		return false, nil
	}
	return err == nil, err
}

// getItem serves GET /items/{id}'s database part.
func (s *Service) getItem(id int64) (it item, found bool, err error) {
	err = s.withConn(func(c *pgxpool.Conn) error {
		found, err = s.readItem(c, qItem, id, &it)
		return err
	})
	return it, found, err
}

// getItems reads the rows of ids, rows[i] for ids[i] (ID 0 when missing):
// with one query per id on one connection (each), or one = ANY query.
func (s *Service) getItems(ids []int64, each bool) ([]item, error) {
	rows := make([]item, len(ids))
	err := s.withConn(func(c *pgxpool.Conn) error {
		if each {
			for i, id := range ids {
				if _, err := s.readItem(c, qItemEach, id, &rows[i]); err != nil {
					return err
				}
			}
			return nil
		}
		return s.readAny(c, ids, rows)
	})
	return rows, err
}

// readAny fills rows from one = ANY($1) query.
func (s *Service) readAny(c *pgxpool.Conn, ids []int64, rows []item) error {
	ctx, cancel := s.stmt()
	defer cancel()
	start := time.Now()
	res, err := c.Query(ctx, sqlItemsAny, ids)
	if err != nil {
		s.observe(qItemsAny, start)
		return err
	}
	found := make(map[int64]item, len(ids))
	var it item
	for res.Next() {
		if err := res.Scan(&it.ID, &it.Name, &it.PriceCents, &it.Stock); err != nil {
			res.Close()
			s.observe(qItemsAny, start)
			return err
		}
		found[it.ID] = it
	}
	res.Close()
	s.observe(qItemsAny, start)
	if err := res.Err(); err != nil {
		return err
	}
	for i, id := range ids {
		rows[i] = found[id] // the zero item when missing
	}
	return nil
}

// placeOrder runs POST /orders's transaction. It returns the order committed,
// or the 404/409 failure of a line (nothing written), or the database's error
// (a 503; a COMMIT whose answer was lost among them).
func (s *Service) placeOrder(o *order) (p *placed, f *failure, err error) {
	err = s.withConn(func(c *pgxpool.Conn) error {
		p, f, err = s.orderTx(c, o)
		return err
	})
	return p, f, err
}

func (s *Service) orderTx(c *pgxpool.Conn, o *order) (p *placed, f *failure, err error) {
	ctx, cancel := s.stmt()
	tx, err := c.Begin(ctx)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			ctx, cancel := s.stmt()
			_ = tx.Rollback(ctx) // on a broken connection it fails; the pool drops the connection
			cancel()
			s.m.rollbacks.Inc()
		}
	}()

	n := len(o.lines)
	ids, qtys := make([]int64, n), make([]int32, n)
	for i, l := range o.lines {
		ids[i], qtys[i] = l.itemID, l.quantity
	}
	start := time.Now()
	prices, err := s.takeStock(tx, ids, qtys)
	if err == nil && len(prices) < n {
		f, err = s.shortfall(tx, o.lines, prices)
	}
	s.observe(qTakeStock, start) // with the lookup of why not, as the Python implementation times it
	if err != nil || f != nil {
		return nil, f, err
	}
	p = &placed{customerID: o.customerID, lines: o.lines, prices: make([]int32, n)}
	for i, l := range o.lines {
		p.prices[i] = prices[l.itemID]
		p.totalCents += int64(p.prices[i]) * int64(l.quantity)
	}

	ctx, cancel = s.stmt()
	start = time.Now()
	err = tx.QueryRow(ctx, sqlInsertOrder, o.customerID, p.totalCents).Scan(&p.id)
	s.observe(qInsertOrder, start)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	if err := s.exec(tx, qInsertLines, sqlInsertLines, p.id, ids, qtys, p.prices); err != nil {
		return nil, nil, err
	}
	if err := s.exec(tx, qInsertOutbox, sqlInsertOutbox, p.id, outboxPayload(p)); err != nil {
		return nil, nil, err
	}

	ctx, cancel = s.stmt()
	start = time.Now()
	err = tx.Commit(ctx)
	s.observe(qCommit, start)
	cancel()
	if err != nil {
		return nil, nil, err // the order may exist, but the client is not told so
	}
	committed = true
	s.m.commits.Inc()
	return p, nil, nil
}

// exec runs one statement of q in tx.
func (s *Service) exec(tx pgx.Tx, q query, sql string, args ...any) error {
	ctx, cancel := s.stmt()
	defer cancel()
	start := time.Now()
	_, err := tx.Exec(ctx, sql, args...)
	s.observe(q, start)
	return err
}

// takeStock runs sqlTakeStock: the prices of the items whose stock it took.
func (s *Service) takeStock(tx pgx.Tx, ids []int64, qtys []int32) (map[int64]int32, error) {
	ctx, cancel := s.stmt()
	defer cancel()
	res, err := tx.Query(ctx, sqlTakeStock, ids, qtys)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	prices := make(map[int64]int32, len(ids))
	var id int64
	var price int32
	for res.Next() {
		if err := res.Scan(&id, &price); err != nil {
			return nil, err
		}
		prices[id] = price
	}
	return prices, res.Err()
}

// shortfall is the failure of the first line (ascending item_id) whose stock
// sqlTakeStock did not take: 404 for an item that does not exist, else 409
// with the stock there is.
func (s *Service) shortfall(tx pgx.Tx, lines []line, taken map[int64]int32) (*failure, error) {
	var left []int64
	for _, l := range lines {
		if _, ok := taken[l.itemID]; !ok {
			left = append(left, l.itemID)
		}
	}
	ctx, cancel := s.stmt()
	defer cancel()
	res, err := tx.Query(ctx, sqlStocks, left)
	if err != nil {
		return nil, err
	}
	stocks := make(map[int64]int32, len(left))
	var id int64
	var stock int32
	for res.Next() {
		if err := res.Scan(&id, &stock); err != nil {
			res.Close()
			return nil, err
		}
		stocks[id] = stock
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, err
	}
	for _, l := range lines {
		if _, ok := taken[l.itemID]; ok {
			continue
		}
		stock, ok := stocks[l.itemID]
		if !ok {
			return notFoundItem(l.itemID), nil
		}
		return shortOfStock(l.itemID, stock, l.quantity), nil
	}
	return nil, errors.New("take_stock: a line left out, but none found") // cannot happen
}
