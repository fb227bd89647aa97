"""The db service's data access: an asyncpg pool, the statements of ``README.md``, "The
contract", and the unit of work of ``POST /orders`` (no HTTP here).

The pool holds ``--pool-size`` connections (asyncpg's floor and ceiling both), opened when it is
made. The service starts while the database is down: the pool is then made in the background
(every ``OPEN_RETRY_S``) and requests are answered 503 until it is. A broken connection is
dropped at its release; a request that finds none open connects one itself, and asyncpg restores
the floor in the background: a restarted database is used again, the service unrestarted.

Every failure of a database call is ``Unavailable``, the contract's 503 (as in go-pgx): an
outage's (unreachable, restarting, refusing, too slow, no pooled connection free within
``--acquire-timeout-ms``) logged once a second at most, any other (perhaps a bug) each time.
Statements are prepared once per connection (asyncpg's statement cache) and bounded by the
server (``statement_timeout``) and, a second later, by the client (``command_timeout``).

Unlike asyncpg's defaults, as pgxpool: no reset query at a connection's release (asyncpg still
rolls back a transaction left open), no recycling after N queries, no closing of idle ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import asyncpg
import msgspec
import structlog
from asyncpg import exceptions as pg

from systems.db.logs import describe
from systems.db.metrics import Metrics
from systems.db.request import Mode, Order
from systems.http_limits import SetupError

if TYPE_CHECKING:  # generic in the stubs only
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]

#: How long closing the pool may take at shutdown before its connections are cut.
CLOSE_S: Final = 2.0
#: How long a connection's release (a ROLLBACK at most) may take.
RELEASE_S: Final = 1.0
#: The client's bound on a statement exceeds the server's by this much.
CLIENT_SLACK_S: Final = 1.0
#: While the pool cannot be made (the database down at start-up), it is tried again this often.
OPEN_RETRY_S: Final = 0.5
#: At most one "database unavailable" log line per this many seconds.
LOG_EVERY_S: Final = 1.0
APPLICATION_NAME: Final = "patternbench-db-asyncpg"
_UNREACHABLE: Final = "the database is unreachable, retry later"
_FAILED: Final = "the database failed to answer, retry later"
_NO_CONNECTION: Final = "no database connection free within {} ms, retry later"

ITEM: Final = "SELECT id, name, price_cents, stock FROM items WHERE id = $1"
ITEMS_ANY: Final = "SELECT id, name, price_cents, stock FROM items WHERE id = ANY($1::bigint[])"
#: Every line's stock in one statement, as go-pgx does it: the rows are locked in ascending id (a
#: nested loop over unnest into the primary key), so concurrent orders cannot deadlock.
TAKE_STOCK: Final = (
    "UPDATE items AS i SET stock = i.stock - l.quantity"
    " FROM unnest($1::bigint[], $2::integer[]) AS l(item_id, quantity)"
    " WHERE i.id = l.item_id AND i.stock >= l.quantity RETURNING i.id, i.price_cents"
)
#: Only after TAKE_STOCK left lines out, observed with it: an unknown item (no row) or a shortfall.
STOCKS_OF: Final = "SELECT id, stock FROM items WHERE id = ANY($1::bigint[])"
INSERT_ORDER: Final = "INSERT INTO orders (customer_id, total_cents) VALUES ($1, $2) RETURNING id"
INSERT_LINES: Final = (
    "INSERT INTO order_lines (order_id, item_id, quantity, price_cents)"
    " SELECT $1, l.item_id, l.quantity, l.price_cents"
    " FROM unnest($2::bigint[], $3::integer[], $4::integer[]) AS l(item_id, quantity, price_cents)"
)
INSERT_OUTBOX: Final = (
    "INSERT INTO outbox (order_id, topic, payload) VALUES ($1, 'order.created', $2::jsonb)"
)

#: What a statement can raise when the database, not the request, is at fault: 503.
UNAVAILABLE_ERRORS: Final = (
    OSError,  # refused, reset, unreachable; TimeoutError (command_timeout) is one too
    pg.PostgresConnectionError,  # the connection lost (class 08)
    pg.InterfaceError,  # a closed connection or pool (DataError, a bad argument, is re-raised)
    pg.OperatorInterventionError,  # admin or crash shutdown, starting up, statement_timeout
    pg.InsufficientResourcesError,  # too many connections, out of memory or disk
    pg.TransactionRollbackError,  # a serialization failure or deadlock
    pg.InternalClientError,  # e.g. a query sent just as the server's FATAL arrived
)
#: Of those, the errors after which the connection is sound: any other closes it.
_SESSION_SOUND: Final = (pg.QueryCanceledError, pg.TransactionRollbackError)


# --- what the store answers ---------------------------------------------------------------------


class Item(msgspec.Struct, frozen=True):
    id: int
    name: str
    price_cents: int
    stock: int


class PricedLine(msgspec.Struct, frozen=True):
    item_id: int
    quantity: int
    price_cents: int


class Placed(msgspec.Struct, frozen=True):
    """An order committed: the 201's body, field for field."""

    id: int
    customer_id: str
    total_cents: int
    lines: list[PricedLine]


class Unavailable(Exception):
    """The database cannot serve the request now (503); the message is for the client."""


class NoSuchItem(Exception):
    def __init__(self, item_id: int) -> None:
        super().__init__(f"item {item_id}: no such item")


class Shortfall(Exception):
    def __init__(self, item_id: int, stock: int, asked: int) -> None:
        super().__init__(f"item {item_id}: {stock} in stock, {asked} asked")


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A released connection is used again as it is (asyncpg rolls back an open transaction)."""


# --- the store ----------------------------------------------------------------------------------


class Store:
    """The pool and the statements; ``open`` before use, ``close`` at the end."""

    def __init__(
        self,
        dsn: str,
        pool_size: int,
        metrics: Metrics,
        *,
        acquire_timeout_ms: int,
        statement_timeout_ms: int,
    ) -> None:
        self._dsn = dsn
        self._size = pool_size
        self._metrics = metrics
        self._query = metrics.query
        self._acquire_s = acquire_timeout_ms / 1000
        self._statement_timeout_ms = statement_timeout_ms
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._no_connection = _NO_CONNECTION.format(acquire_timeout_ms)
        self._log = structlog.get_logger("db.store")
        self._down = False
        self._last_log = -LOG_EVERY_S
        self._unlogged = 0

    async def open(self) -> None:
        """Make the pool, its connections open, if the database answers now; else go on
        trying in the background (``OPEN_RETRY_S``) while requests are answered 503.

        SetupError for a DSN asyncpg cannot use.
        """
        try:
            self._pool = await self._create_pool()
        except ValueError as exc:  # a bad DSN (ClientConfigurationError is one too)
            raise SetupError(f"--dsn: {exc}") from None
        except Exception as exc:
            self._unavailable(Unavailable(_UNREACHABLE), describe(exc))
            self._opening = asyncio.create_task(self._keep_opening())

    def _create_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        return asyncpg.create_pool(
            self._dsn,
            min_size=self._size,
            max_size=self._size,
            max_queries=sys.maxsize,
            max_inactive_connection_lifetime=0,
            reset=_no_reset,
            timeout=self._acquire_s,  # for each connect
            command_timeout=self._statement_timeout_ms / 1000 + CLIENT_SLACK_S,
            server_settings={
                "statement_timeout": str(self._statement_timeout_ms),
                "application_name": APPLICATION_NAME,
            },
        )

    async def _keep_opening(self) -> None:
        while self._pool is None:
            await asyncio.sleep(OPEN_RETRY_S)
            try:
                self._pool = await self._create_pool()
            except Exception as exc:
                self._unavailable(Unavailable(_UNREACHABLE), describe(exc))
        self._down = False
        self._log.info("database pool open", connections=self._pool.get_size())

    async def close(self) -> None:
        """Close the pool's connections (cut them after ``CLOSE_S``)."""
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(CLOSE_S):
                await pool.close()
        except (TimeoutError, *UNAVAILABLE_ERRORS):
            pool.terminate()

    def connections(self) -> tuple[int, int]:
        """(busy, idle): the pool's open connections in use and not, now."""
        pool = self._pool
        if pool is None:
            return 0, 0
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle

    # --- reads ----------------------------------------------------------------------------------

    async def item(self, item_id: int) -> Item | None:
        async with self._connection() as conn:
            start = time.perf_counter()
            row = await conn.fetchrow(ITEM, item_id)
            self._query["item"].observe(time.perf_counter() - start)
        return None if row is None else Item(*row)

    async def items(self, ids: Sequence[int], mode: Mode) -> list[Item | None]:
        """The items of ``ids`` in their order (a repeated id repeated), None where missing:
        one ``= ANY`` query (``any``) or one query per id on one connection (``each``)."""
        if mode == "each":
            return await self._items_each(ids)
        async with self._connection() as conn:
            start = time.perf_counter()
            rows = await conn.fetch(ITEMS_ANY, ids)
            self._query["items_any"].observe(time.perf_counter() - start)
        found = {row[0]: Item(*row) for row in rows}
        return [found.get(item_id) for item_id in ids]

    async def _items_each(self, ids: Sequence[int]) -> list[Item | None]:
        out: list[Item | None] = []
        observe = self._query["item_each"].observe
        async with self._connection() as conn:
            for item_id in ids:
                start = time.perf_counter()
                row = await conn.fetchrow(ITEM, item_id)
                observe(time.perf_counter() - start)
                out.append(None if row is None else Item(*row))
        return out

    # --- the unit of work -----------------------------------------------------------------------

    async def place_order(self, order: Order) -> Placed:
        """Take the stock of every line (in ascending ``item_id``), insert the order, its lines
        and its outbox row, and commit: one transaction. NoSuchItem or Shortfall (the
        transaction rolled back) for a line that cannot be served; Unavailable when the
        database fails, COMMIT included (the order may then exist, unknown to the client).
        """
        async with self._connection() as conn:
            tx = conn.transaction()
            await tx.start()
            committed = False
            try:
                placed = await self._write(conn, order)
                start = time.perf_counter()
                await tx.commit()
                self._query["commit"].observe(time.perf_counter() - start)
                committed = True
            finally:
                if committed:
                    self._metrics.commits.inc()
                else:
                    self._metrics.rollbacks.inc()
                    # A failed COMMIT or a lost connection ended it already: nothing to undo.
                    with contextlib.suppress(*UNAVAILABLE_ERRORS):
                        await tx.rollback()
        return placed

    async def _write(self, conn: Conn, order: Order) -> Placed:
        query = self._query
        start = time.perf_counter()
        taken = await conn.fetch(
            TAKE_STOCK,
            [line.item_id for line in order.lines],
            [line.quantity for line in order.lines],
        )
        prices: dict[int, int] = {row["id"]: row["price_cents"] for row in taken}
        left_out = sorted((line for line in order.lines if line.item_id not in prices),
                          key=lambda line: line.item_id)  # fmt: skip
        if left_out:
            rows = await conn.fetch(STOCKS_OF, [line.item_id for line in left_out])
            query["take_stock"].observe(time.perf_counter() - start)
            stocks: dict[int, int] = {row["id"]: row["stock"] for row in rows}
            first = left_out[0]  # the lowest id that failed, as go-pgx reports it
            if first.item_id not in stocks:
                raise NoSuchItem(first.item_id)
            raise Shortfall(first.item_id, stocks[first.item_id], first.quantity)
        query["take_stock"].observe(time.perf_counter() - start)
        lines = [PricedLine(line.item_id, line.quantity, prices[line.item_id])
                 for line in order.lines]  # fmt: skip
        total = sum(line.quantity * line.price_cents for line in lines)

        start = time.perf_counter()
        order_id: int = await conn.fetchval(INSERT_ORDER, order.customer_id, total)
        query["insert_order"].observe(time.perf_counter() - start)

        start = time.perf_counter()
        await conn.execute(
            INSERT_LINES,
            order_id,
            [line.item_id for line in lines],
            [line.quantity for line in lines],
            [line.price_cents for line in lines],
        )
        query["insert_lines"].observe(time.perf_counter() - start)

        payload: dict[str, Any] = {
            "order_id": order_id,
            "customer_id": order.customer_id,
            "total_cents": total,
            "lines": lines,
        }
        start = time.perf_counter()
        await conn.execute(INSERT_OUTBOX, order_id, msgspec.json.encode(payload).decode())
        query["insert_outbox"].observe(time.perf_counter() - start)
        return Placed(order_id, order.customer_id, total, lines)

    # --- connections ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection, waited for at most ``--acquire-timeout-ms`` (connecting it if
        need be): the wait and the hold observed once each; the database's failures as
        Unavailable; released at the end (a broken one closed first, and dropped by the pool)."""
        pool = self._pool
        if pool is None:
            raise self._unavailable(Unavailable(_UNREACHABLE), "no pool yet")
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self._acquire_s):
                conn = await pool.acquire()
        except TimeoutError:
            self._metrics.acquire.observe(time.perf_counter() - start)
            raise self._unavailable(Unavailable(self._no_connection), "acquire timed out") from None
        except Exception as exc:  # connecting failed: refused, starting up, shutting down, ...
            self._metrics.acquire.observe(time.perf_counter() - start)
            raise self._unavailable(Unavailable(_UNREACHABLE), describe(exc)) from None
        acquired = time.perf_counter()
        self._metrics.acquire.observe(acquired - start)
        if self._down:
            self._down = False
            self._log.info("database connection acquired again")
        try:
            yield conn
        except UNAVAILABLE_ERRORS as exc:
            if isinstance(exc, pg.DataError):  # an InterfaceError, but a bad argument: a bug
                raise self._failed(exc) from None
            if not isinstance(exc, _SESSION_SOUND):
                # asyncpg may not know yet that it is broken; if it does, it has released it.
                with contextlib.suppress(pg.InterfaceError):
                    conn.terminate()
            raise self._unavailable(Unavailable(_FAILED), describe(exc)) from None
        except pg.PostgresError as exc:  # a statement's error, not an outage
            raise self._failed(exc) from None
        finally:
            self._metrics.held.observe(time.perf_counter() - acquired)
            with contextlib.suppress(Exception):  # a broken connection is terminated anyway
                await pool.release(conn, timeout=RELEASE_S)

    def _failed(self, exc: Exception) -> Unavailable:
        """A database error that is no outage (perhaps a bug): logged each time, still a 503."""
        self._log.error("database error (answered 503)", error=describe(exc))
        return Unavailable(_FAILED)

    def _unavailable(self, exc: Unavailable, reason: str) -> Unavailable:
        """``exc``, logged (at most one line per ``LOG_EVERY_S``, with the count left out)."""
        self._down = True
        now = time.monotonic()
        if now - self._last_log < LOG_EVERY_S:
            self._unlogged += 1
            return exc
        self._log.warning(
            "database unavailable", reason=reason, answer=str(exc), not_logged=self._unlogged
        )
        self._last_log, self._unlogged = now, 0
        return exc
