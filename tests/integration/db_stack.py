"""The db pattern's processes for tests, each real: a PostgreSQL of the test's own (Debian's server,
by systems/db/postgres.py, migrated and seeded), the services and the outbox relay.

Ports are free ones below the kernel's ephemeral range, so that no outgoing connection of the
test holds the database's port while it restarts. A caller appends what it starts to ``procs``.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.launch.supervisor import port_in_use
from systems.db import postgres
from tests.integration.service_process import ROOT, Proc

SERVICES = {
    "python-asyncpg": [sys.executable, "-m", "systems.db.service"],
    "go-pgx": [str(ROOT / "go" / "bin" / "dbpgx")],
}
ITEMS = 100_000  # what the vectors expect


def low_port() -> int:
    """A free port below the ephemeral range."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        if not port_in_use(port):
            return port
    raise RuntimeError("no free port below 32000")


@dataclass
class Database:
    proc: Proc
    port: int
    metrics_port: int

    def dsn(self, role: str = "postgres") -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/bench"

    def restart(self) -> None:
        """The launcher's fault: a fast shutdown, its pause, a start on the same data."""
        self.proc.popen.send_signal(signal.SIGUSR1)

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.dsn())
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def reset(self) -> None:
        self.sql("CALL bench_reset()")

    def wait_up(self, timeout_s: float = 30.0) -> None:
        asyncio.run(postgres.wait_ready(self.dsn(), timeout_s))

    def counted(self, role: str = "bench_app") -> float:
        """Statements `role` ran, from the launcher's pg_stat_statements export."""
        text = get(f"127.0.0.1:{self.metrics_port}", "/metrics")[1].decode()
        for line in text.splitlines():
            if line.startswith(f'pg_statements_calls_total{{role="{role}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def start_database(pause_s: float = 1.0) -> Database:
    port, metrics_port = low_port(), low_port()
    argv = [sys.executable, "-m", "systems.db.postgres", "serve", "--port", str(port),
            "--metrics-port", str(metrics_port), "--restart-pause-s", str(pause_s)]  # fmt: skip
    proc = Proc(argv)
    db = Database(proc, port, metrics_port)
    try:
        asyncio.run(postgres.setup(db.dsn(), ITEMS))
    except BaseException:
        proc.stop()
        raise
    return db


def start_service(impl: str, db: Database, *flags: str) -> tuple[Proc, str]:
    """An implementation on a free port against `db` as bench_app; its process and address."""
    argv = [*SERVICES[impl], "--listen", "127.0.0.1:0", "--dsn", db.dsn("bench_app"),
            "--items", str(ITEMS), *flags]  # fmt: skip
    proc = Proc(argv)
    return proc, proc.wait_listening(timeout=20)[0]


def start_relay(db: Database) -> tuple[Proc, str]:
    port = low_port()
    proc = Proc([sys.executable, "-m", "systems.db.relay", "--dsn", db.dsn("bench_relay"),
                 "--metrics-listen", f"127.0.0.1:{port}", "--poll-ms", "10"])  # fmt: skip
    addr = f"127.0.0.1:{port}"
    until = time.monotonic() + 20
    while time.monotonic() < until:
        try:
            if get(addr, "/healthz")[0] == 200:
                return proc, addr
        except OSError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"the relay did not answer on {addr}: {''.join(proc.log)}")


def get(addr: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    return request(addr, "GET", path)


def request(
    addr: str, method: str, path: str, body: Any = None
) -> tuple[int, bytes, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, answer.read(), dict(answer.headers.items())
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers.items())
