"""The outbox relay of the db pattern (``README.md``, "The outbox relay"), one for both services.

    python -m systems.db.relay --dsn postgresql://bench_relay@127.0.0.1:5432/bench \\
        --metrics-listen 127.0.0.1:9187 [--batch 100] [--poll-ms 10]

In a loop, on one connection, one transaction selects up to ``--batch`` unsent outbox rows
(``ORDER BY id FOR UPDATE SKIP LOCKED``) with their commit time, publishes them to the sink
(``sink_events``) in a transaction of its own on a second connection (autocommit, one
``INSERT ... ON CONFLICT`` for the batch), then marks them sent and commits. A relay or a
database that dies between the publication and the commit delivers those rows again: at least
once, the sink counting the duplicates, none lost. It polls every ``--poll-ms`` while idle and
at once after a full batch.

Any error (the database restarting, unreachable, refusing) drops both connections, is counted
(``outbox_relay_errors_total``) and logged as one JSON line, and the relay reconnects after a
back-off (100 ms, doubling to 2 s). It serves ``GET /metrics`` and ``GET /healthz`` on
``--metrics-listen`` (the scaffold, ``systems/serving.py``). SIGTERM or SIGINT: the batch under
way is finished, the connections closed, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

import asyncpg
import structlog
from aiohttp import web

from systems import serving
from systems.db.dsn import chosen
from systems.db.logs import configure_logging, describe
from systems.db.metrics import RelayMetrics

PROG: Final = "db-relay"
APPLICATION_NAME: Final = "patternbench-db-relay"
#: Connecting, and a statement, may take this long before the relay gives up and reconnects.
CONNECT_TIMEOUT_S: Final = 5.0
STATEMENT_TIMEOUT_S: Final = 10.0
#: The back-off between reconnections: the first, doubled after each failure, at most.
BACKOFF_FIRST_S: Final = 0.1
BACKOFF_MAX_S: Final = 2.0
#: After SIGTERM, how long the batch under way may take to finish before it is abandoned (its
#: transaction then rolls back and the rows go again: at least once still).
STOP_GRACE_S: Final = 15.0

SELECT_BATCH: Final = (
    "SELECT id, order_id, pg_xact_commit_timestamp(xmin) AS committed_at FROM outbox"
    " WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
)
PUBLISH: Final = (
    "INSERT INTO sink_events (event_id, order_id)"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[])"
    " ON CONFLICT (event_id) DO UPDATE SET deliveries = sink_events.deliveries + 1"
    " RETURNING event_id, deliveries, clock_timestamp() AS published_at"
)
MARK_SENT: Final = "UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1::bigint[])"


@dataclass(frozen=True, slots=True)
class Config:
    """The validated command line."""

    dsn: str
    host: str
    port: int
    batch: int
    poll_ms: int


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser(PROG, __doc__)
    p.add_argument("--dsn", required=True)
    p.add_argument("--dsn-env", default="", help="a variable whose value, when set, is the DSN")
    p.add_argument("--metrics-listen", type=serving.parse_listen, default=("127.0.0.1", 9187))
    p.add_argument("--batch", type=serving.int_in(1, 10_000), default=100)
    p.add_argument("--poll-ms", type=serving.int_in(1, 600_000), default=10)
    a = p.parse_args(argv)
    host, port = a.metrics_listen
    return Config(
        dsn=chosen(a.dsn, a.dsn_env), host=host, port=port, batch=a.batch, poll_ms=a.poll_ms
    )


if TYPE_CHECKING:  # generic in the stubs only
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record]


class Relay:
    """The loop; ``run`` until ``stop``, which lets the batch under way finish."""

    def __init__(self, config: Config, metrics: RelayMetrics) -> None:
        self._config = config
        self._metrics = metrics
        self._stopping = asyncio.Event()
        #: The batch's transaction's connection, and the publication's (autocommit).
        self._conns: tuple[Connection, Connection] | None = None
        self._log = structlog.get_logger("db.relay")

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Relay batches until ``stop``; every error is logged, counted and outlived."""
        backoff = BACKOFF_FIRST_S
        failures = 0
        poll_s = self._config.poll_ms / 1000
        try:
            while not self._stopping.is_set():
                try:
                    if self._conns is None:
                        self._conns = await self._connect()
                        self._log.info("relay connected", after_failures=failures)
                    rows = await self._batch(*self._conns)
                except Exception as exc:  # the database gone, restarting, refusing; or a bug
                    failures += 1
                    self._metrics.errors.inc()
                    self._log.warning(
                        "relay error, reconnecting",
                        error=describe(exc),
                        attempt=failures,
                        retry_in_s=backoff,
                    )
                    self._drop()
                    await self._pause(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff, failures = BACKOFF_FIRST_S, 0
                if rows < self._config.batch:
                    await self._pause(poll_s)
        finally:
            await self._close()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if told to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _connect(self) -> tuple[Connection, Connection]:
        outbox = await self._new_connection()
        try:
            return outbox, await self._new_connection()
        except BaseException:
            outbox.terminate()
            raise

    async def _new_connection(self) -> Connection:
        return await asyncpg.connect(
            self._config.dsn,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=STATEMENT_TIMEOUT_S,
            server_settings={"application_name": APPLICATION_NAME},
        )

    def _drop(self) -> None:
        """Cut both connections (after an error: no goodbye to a server that may be gone)."""
        conns, self._conns = self._conns, None
        for conn in conns or ():
            conn.terminate()

    async def _close(self) -> None:
        conns, self._conns = self._conns, None
        for conn in conns or ():
            try:
                await conn.close(timeout=CONNECT_TIMEOUT_S)
            except Exception:
                conn.terminate()

    async def _batch(self, outbox: Connection, sink: Connection) -> int:
        """One batch: select, publish, mark sent, commit. The number of rows selected."""
        metrics = self._metrics
        async with outbox.transaction():
            rows = await outbox.fetch(SELECT_BATCH, self._config.batch)
            if not rows:
                return 0
            ids = [row[0] for row in rows]
            published = await sink.fetch(PUBLISH, ids, [row[1] for row in rows])
            metrics.published.inc(len(published))
            duplicates = sum(1 for row in published if row[1] > 1)
            if duplicates:
                metrics.duplicates.inc(duplicates)
            # Both times on the database's clock: the commit's and the sink insert's.
            published_at = {row[0]: row[2] for row in published}
            for row in rows:
                committed_at, at = row[2], published_at.get(row[0])
                if committed_at is not None and at is not None:  # NULL: no commit timestamp
                    metrics.lag.observe(max(0.0, (at - committed_at).total_seconds()))
            await outbox.execute(MARK_SENT, ids)
        metrics.batch.observe(len(rows))
        return len(rows)


async def run(config: Config) -> None:
    """Relay and serve the metrics until SIGTERM or SIGINT; then finish the batch and return.

    The relay starts once the metrics address is bound (a taken one fails start-up at once);
    its task is awaited, or cancelled after ``STOP_GRACE_S``, in the scaffold's drain.
    """
    metrics = RelayMetrics()
    relay = Relay(config, metrics)
    relaying: set[asyncio.Task[None]] = set()

    async def ops(request: web.BaseRequest) -> web.StreamResponse:
        return serving.ops_response(request.method, request.path, metrics.registry)

    async def start() -> None:
        relaying.add(asyncio.create_task(relay.run()))

    async def drain(runner: web.ServerRunner, until: float) -> None:
        relay.stop()
        if relaying:
            _, late = await asyncio.wait(relaying, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*relaying, return_exceptions=True)
        await runner.cleanup()

    await serving.serve(ops, config.host, config.port, ready=start, drain=drain)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging()
    return serving.run(PROG, lambda: run(config))


if __name__ == "__main__":
    sys.exit(main())
