"""The db pattern's schema and data: migrations/*.sql applied in order, and the seeded items.

``setup`` (``python -m systems.db.postgres setup``) creates the database when it is missing,
applies each migration once (recorded with its checksum in ``schema_migrations``; a file changed
after it was applied is refused, naming it) and seeds ``items`` with ``COPY`` when it does not
hold the rows asked for (README.md "The database").
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import asyncpg

MIGRATIONS: Final = Path(__file__).with_name("migrations")
SCARCE_EVERY: Final = 1000
SCARCE_STOCK: Final = 10
STOCK: Final = 1_000_000
#: How long `setup` waits for a server that is starting.
CONNECT_WAIT_S: Final = 30.0


class SetupError(Exception):
    """What stops the server or the schema from being made; the message is one line."""


async def wait_ready(dsn: str, timeout_s: float = CONNECT_WAIT_S) -> None:
    """Until the server takes a connection and answers (a starting server refuses both)."""
    until = time.monotonic() + timeout_s
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2.0)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            if time.monotonic() > until:
                raise SetupError(
                    f"{where(dsn)} did not take a connection in {timeout_s:g} s: {e}"
                ) from None
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        return


def where(dsn: str) -> str:
    return dsn.split("@")[-1]


def migrations() -> list[tuple[str, str, str]]:
    """(version, sql, sha256) of every migrations/NNNN_*.sql, in order."""
    found = []
    for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        sql = path.read_text(encoding="utf-8")
        found.append((path.stem, sql, hashlib.sha256(sql.encode()).hexdigest()))
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is not applied yet, each in its own transaction; the versions applied."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
        "sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = await conn.fetch("SELECT version, sha256 FROM schema_migrations")
    applied = {r["version"]: r["sha256"] for r in rows}
    done = []
    for version, sql, digest in migrations():
        if version in applied:
            if applied[version] != digest:
                raise SetupError(
                    f"{MIGRATIONS / version}.sql: changed after it was applied (a new migration "
                    "must be a new file)"
                )
            continue
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, sha256) VALUES ($1, $2)", version, digest
            )
        done.append(version)
    return done


def item_rows(count: int) -> Iterator[tuple[int, str, str, int, int, int]]:
    """The seeded items: deterministic, see README.md "The database"."""
    for i in range(1, count + 1):
        stock = SCARCE_STOCK if i % SCARCE_EVERY == 0 else STOCK
        name = f"item-{i:06d}"
        description = f"{name}: " + (f"{i * 2654435761 % 4294967296:08x}" * 10)[:70]
        yield i, name, description, 100 + (i * 7919 % 99_900), stock, stock


async def seed(conn: asyncpg.Connection, count: int) -> bool:
    """Fill items when it does not hold `count` rows (everything written is emptied first)."""
    have = await conn.fetchval("SELECT count(*) FROM items")
    top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM items")
    if have == count and top == count:
        return False
    async with conn.transaction():
        await conn.execute("TRUNCATE sink_events, outbox, order_lines, orders, items")
        await conn.copy_records_to_table(
            "items",
            records=item_rows(count),
            columns=["id", "name", "description", "price_cents", "stock", "initial_stock"],
        )
    await conn.execute("VACUUM ANALYZE items")
    return True


async def setup(dsn: str, items: int) -> str:
    """Create the database when missing, migrate, seed; what was done, in one line."""
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    await wait_ready(admin)
    conn = await asyncpg.connect(admin)
    try:
        name = dsn.rsplit("/", 1)[1].split("?")[0]
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate(conn)
        seeded = await seed(conn, items)
    finally:
        await conn.close()
    return (
        f"{where(dsn)}: migrations applied: {', '.join(applied) or 'none new'}; "
        f"items: {'seeded ' + str(items) if seeded else 'already ' + str(items)}"
    )
