"""The database's own counts, as Prometheus text: what the harness reads around each trial.

Served by the PostgreSQL launcher (``systems.db.postgres serve --metrics-port``) on every scrape,
from one connection as ``postgres`` (whose own statements are not counted under the roles below):

- ``pg_statements_calls_total{role}``: statements executed, from ``pg_stat_statements``, per role
  (the services connect as ``bench_app``, the outbox relay as ``bench_relay``). The harness
  divides the services' by the requests answered: the round trips a request costs, which
  batching cannot hide.
- ``pg_statements_exec_seconds_total{role}``, ``pg_statements_rows_total{role}``;
- ``pg_xact_commit_total``, ``pg_xact_rollback_total``, ``pg_blocks_read_total``,
  ``pg_blocks_hit_total`` of the database (``pg_stat_database``);
- ``pg_up`` (0 when the server does not answer: then nothing else), ``pg_restarts_total``
  (the launcher's SIGUSR1 restarts).

``/healthz`` is 200 only while the database takes a query: the harness's readiness of the
database, whether the launcher's own server or an existing one.
"""

from __future__ import annotations

import asyncio
from typing import Final

import asyncpg
from aiohttp import web

from systems.answers import health_response

STATEMENTS: Final = """
SELECT r.rolname AS role, sum(s.calls)::float8 AS calls,
       sum(s.total_exec_time)::float8 / 1000 AS exec_s, sum(s.rows)::float8 AS rows
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY r.rolname ORDER BY r.rolname
"""
DATABASE: Final = """
SELECT xact_commit::float8, xact_rollback::float8, blks_read::float8, blks_hit::float8
FROM pg_stat_database WHERE datname = current_database()
"""
QUERY_TIMEOUT_S: Final = 2.0


class Stats:
    """One lazily made connection; dropped when the server goes (a restart), made again."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.restarts = 0
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def forget(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        await self.forget()

    async def text(self) -> str:
        lines = [
            "# TYPE pg_restarts_total counter",
            f"pg_restarts_total {self.restarts}",
            "# TYPE pg_up gauge",
        ]
        try:
            async with self._lock, asyncio.timeout(QUERY_TIMEOUT_S):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn)
                statements = await self._conn.fetch(STATEMENTS)
                database = await self._conn.fetchrow(DATABASE)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self.forget()
            return "\n".join([*lines, "pg_up 0", ""])
        lines.append("pg_up 1")
        for metric, column, kind in (
            ("pg_statements_calls_total", "calls", "counter"),
            ("pg_statements_exec_seconds_total", "exec_s", "counter"),
            ("pg_statements_rows_total", "rows", "counter"),
        ):
            lines.append(f"# TYPE {metric} {kind}")
            lines += [f'{metric}{{role="{r["role"]}"}} {r[column]!r}' for r in statements]
        if database is not None:
            names = ("pg_xact_commit_total", "pg_xact_rollback_total", "pg_blocks_read_total")
            for i, metric in enumerate((*names, "pg_blocks_hit_total")):
                lines += [f"# TYPE {metric} counter", f"{metric} {database[i]!r}"]
        return "\n".join([*lines, ""])


async def answers(dsn: str) -> bool:
    """Whether the database at `dsn` takes a query now (a starting or stopped one does not)."""
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_S):
            conn = await asyncpg.connect(dsn)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    return True


def app(stats: Stats, health_dsn: str) -> web.Application:
    """/metrics of `stats`; /healthz 200 while the database of `health_dsn` (one that exists
    before the pattern's own is made: the server's `postgres`) answers, else 503."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=await stats.text(), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        if await answers(health_dsn):
            return health_response()
        return web.json_response({"status": "the database does not answer"}, status=503)

    application = web.Application()
    application.router.add_get("/metrics", metrics)
    application.router.add_get("/healthz", healthz)
    return application
