"""A restart survived: PostgreSQL restarts under a steady write load; no acknowledged order lost.

    python systems/db/restart_check.py --name python-asyncpg \\
        --command '["{python}", "-m", "systems.db.service", "--listen", "127.0.0.1:{port}", ...]'

One target (an implementation's command, `{port}`, `{dsn}` and `{python}` filled in here) is
started with a PostgreSQL of its own (``systems.db.postgres serve``, migrated and seeded) and the
outbox relay. An open-loop client sends ``POST /orders`` at ``--rate`` for ``--duration-s``; at
``--fault-at-s`` the database gets a fast shutdown and starts again (the launcher's SIGUSR1). Then,
once the relay has drained the outbox, every order answered 201 is looked up: its order row, its
outbox row, and that row's delivery to the sink (duplicates counted, none may be missing). The
target and the relay are never restarted; the target must still be the process it was.

It prints one JSON object (bench/studies/fault.py reads it): ``measures`` (requests, acknowledged,
errors by kind, the client-seen outage, the recovery after the database was back, duplicates) and
``checks`` (each a value that must be 0, or true, for the restart to count as survived).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import asyncpg

ROOT: Final = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from systems.db import postgres  # noqa: E402

#: How long each order may take to be answered before the client counts a time-out.
REQUEST_TIMEOUT_S: Final = 3.0
#: How long the relay has to publish what is left once the load stops.
DRAIN_S: Final = 30.0
START_S: Final = 30.0


def free_port() -> int:
    """A free port below the kernel's ephemeral range: the database listens on it again after the
    restart, and there an outgoing connection of this check could hold it meanwhile."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, max(low, 20_001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port from 20000 to {low}")


@dataclass
class Outcome:
    sent_at: float
    answered_at: float
    status: str  # "201", another status, or the client's error kind
    order_id: int | None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    fault_at: float = 0.0
    db_back_at: float | None = None


def _order(rng: random.Random) -> dict[str, Any]:
    """1 to 3 lines of items that never run out (the scarce ones are every 1,000th)."""
    ids = sorted(rng.sample(range(1, 900), rng.randint(1, 3)))
    lines = [{"item_id": i, "quantity": rng.randint(1, 3)} for i in ids]
    return {"customer_id": f"c-{rng.randint(1, 10_000)}", "lines": lines}


async def _send(session: aiohttp.ClientSession, url: str, body: dict[str, Any], load: Load) -> None:
    sent = time.monotonic()
    status, order_id = "", None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S), session.post(url, json=body) as answer:
            status = str(answer.status)
            payload = await answer.json(content_type=None)
            if answer.status == 201:
                order_id = int(payload["id"])
    except TimeoutError:
        status = "timeout"
    except aiohttp.ClientError as e:
        status = type(e).__name__
    except (ValueError, KeyError, TypeError):
        status = f"{status or 'answer'}-unreadable"
    load.outcomes.append(Outcome(sent, time.monotonic(), status, order_id))


async def _watch_db(dsn: str, load: Load, until: float) -> None:
    """After the fault: the first moment the database takes a connection again."""
    await asyncio.sleep(0.05)
    while time.monotonic() < until:
        try:
            conn = await asyncpg.connect(dsn, timeout=1.0)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await asyncio.sleep(0.02)
            continue
        await conn.close()
        load.db_back_at = time.monotonic()
        return


async def drive(
    url: str, dsn: str, launcher: int, rate: float, duration_s: float, fault_at_s: float
) -> Load:
    """Orders at `rate` (constant spacing, from intended send times) with the fault mid-way."""
    load, rng = Load(), random.Random(1)
    start = time.monotonic()
    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
        n, faulted = 0, False
        while (due := start + n / rate) < start + duration_s:
            if not faulted and due >= start + fault_at_s:
                faulted = True
                load.fault_at = time.monotonic()
                os.kill(launcher, signal.SIGUSR1)
                tasks.create_task(_watch_db(dsn, load, start + duration_s + START_S))
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.create_task(_send(session, url, _order(rng), load))
            n += 1
    return load


async def drained(dsn: str) -> int:
    """Waits for the relay to publish every outbox row; what is left unsent after DRAIN_S."""
    until, left = time.monotonic() + DRAIN_S, -1
    while time.monotonic() < until:
        conn = await asyncpg.connect(dsn)
        try:
            left = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        finally:
            await conn.close()
        if left == 0:
            return 0
        await asyncio.sleep(0.2)
    return int(left)


async def audit(dsn: str, acknowledged: list[int]) -> dict[str, int]:
    """Every acknowledged order's rows, and every outbox row's delivery."""
    conn = await asyncpg.connect(dsn)
    try:
        orders = await conn.fetchval(
            "SELECT count(DISTINCT id) FROM orders WHERE id = ANY($1::bigint[])", acknowledged
        )
        outbox = await conn.fetchval(
            "SELECT count(DISTINCT order_id) FROM outbox WHERE order_id = ANY($1::bigint[])",
            acknowledged,
        )
        undelivered = await conn.fetchval(
            "SELECT count(*) FROM outbox o LEFT JOIN sink_events s ON s.event_id = o.id "
            "WHERE s.event_id IS NULL"
        )
        row = await conn.fetchrow(
            "SELECT count(*) AS events, coalesce(sum(deliveries - 1), 0) AS duplicates "
            "FROM sink_events"
        )
        written = await conn.fetchval("SELECT count(*) FROM orders")
        assert row is not None  # an aggregate always has its row
    finally:
        await conn.close()
    unique = len(set(acknowledged))
    return {
        "lost_orders": unique - int(orders),
        "lost_outbox_rows": unique - int(outbox),
        "undelivered_events": int(undelivered),
        "duplicate_deliveries": int(row["duplicates"]),
        "events_delivered": int(row["events"]),
        "orders_written": int(written),
        "orders_answered_twice": len(acknowledged) - unique,
    }


def summarize(load: Load) -> dict[str, Any]:
    """What the client saw: counts, errors by kind, the outage and the recovery."""
    outcomes = sorted(load.outcomes, key=lambda o: o.sent_at)
    failed = [o for o in outcomes if o.status != "201"]
    after = [o for o in outcomes if o.answered_at >= load.fault_at]
    first_error = next((o for o in after if o.status != "201"), None)
    recovered = None
    if first_error is not None:
        later_ok = [o for o in after if o.status == "201" and o.sent_at > first_error.sent_at]
        recovered = min((o.answered_at for o in later_ok), default=None)
    measures: dict[str, Any] = {
        "requests": len(outcomes),
        "acknowledged": sum(o.status == "201" for o in outcomes),
        "errors": len(failed),
        "error_kinds": dict(Counter(o.status for o in failed)),
        "outage_s": (recovered - first_error.sent_at)
        if first_error is not None and recovered is not None
        else 0.0,
        "database_down_s": (load.db_back_at - load.fault_at) if load.db_back_at else None,
        "recovery_after_database_s": (recovered - load.db_back_at)
        if recovered is not None and load.db_back_at is not None
        else None,
        "successes_after_fault": sum(o.status == "201" for o in after),
    }
    return measures


def _fill(command: Sequence[str], values: dict[str, str]) -> list[str]:
    out = []
    for part in command:
        for key, value in values.items():
            part = part.replace("{" + key + "}", value)
        out.append(part)
    return out


async def _until_ready(url: str, proc: asyncio.subprocess.Process, what: str) -> None:
    until = time.monotonic() + START_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            if proc.returncode is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
            try:
                async with asyncio.timeout(1.0), session.get(url) as answer:
                    if answer.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {START_S:g} s")


async def _stop(proc: asyncio.subprocess.Process | None) -> int | None:
    if proc is None or proc.returncode is not None:
        return proc.returncode if proc else None
    proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(15):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        return await proc.wait()


async def check(args: argparse.Namespace) -> dict[str, Any]:
    pg, stats, port, relay_port = free_port(), free_port(), free_port(), free_port()
    admin = f"postgresql://postgres@127.0.0.1:{pg}/bench"
    python = sys.executable
    procs: list[asyncio.subprocess.Process] = []
    logs = Path(args.logs)

    async def spawn(name: str, cmd: Sequence[str]) -> asyncio.subprocess.Process:
        log = (logs / f"{name}.log").open("ab")
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=log, cwd=ROOT)
        procs.append(proc)
        return proc

    try:
        launcher = await spawn("postgres", [
            python, "-m", "systems.db.postgres", "serve", "--port", str(pg),
            "--metrics-port", str(stats), "--restart-pause-s", str(args.down_s),
        ])  # fmt: skip
        await postgres.setup(admin, args.items)
        await spawn("relay", [
            python, "-m", "systems.db.relay", "--dsn",
            f"postgresql://bench_relay@127.0.0.1:{pg}/bench",
            "--metrics-listen", f"127.0.0.1:{relay_port}",
        ])  # fmt: skip
        dsn = f"postgresql://bench_app@127.0.0.1:{pg}/bench"
        values = {"port": str(port), "dsn": dsn, "python": python, "items": str(args.items)}
        target = await spawn("target", _fill(json.loads(args.command), values))
        base = f"http://127.0.0.1:{port}"
        await _until_ready(f"{base}/items/1", target, args.name)
        load = await drive(
            f"{base}/orders", admin, launcher.pid, args.rate, args.duration_s, args.fault_at_s
        )
        left = await drained(admin)
        measures = summarize(load)
        acknowledged = [o.order_id for o in load.outcomes if o.order_id is not None]
        found = await audit(admin, acknowledged)
        alive = target.returncode is None
    finally:
        for proc in reversed(procs):
            await _stop(proc)
    measures |= {k: found[k] for k in ("events_delivered", "orders_written",
                                       "duplicate_deliveries")}  # fmt: skip
    checks = {
        "lost_orders": found["lost_orders"],
        "lost_outbox_rows": found["lost_outbox_rows"],
        "undelivered_events": found["undelivered_events"],
        "unsent_after_drain": left,
        "orders_answered_twice": found["orders_answered_twice"],
        "served_after_restart": measures["successes_after_fault"] > 0,
        "never_restarted": alive,
    }
    return {"target": args.name, "measures": measures, "checks": checks,
            "fault": f"fast shutdown at {args.fault_at_s:g} s, {args.down_s:g} s down, "
                     f"under {args.rate:g} orders/s for {args.duration_s:g} s"}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restart_check", description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="the target's name, for the report")
    parser.add_argument("--command", required=True, help="its command, a JSON list")
    parser.add_argument("--rate", type=float, default=100.0, help="orders per second")
    parser.add_argument("--duration-s", type=float, default=8.0)
    parser.add_argument("--fault-at-s", type=float, default=3.0)
    parser.add_argument("--down-s", type=float, default=1.0, help="the database's down time")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--logs", default=".", help="where the processes' output goes")
    args = parser.parse_args(argv)
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    if not 0 < args.fault_at_s < args.duration_s:
        parser.error("--fault-at-s must fall inside the load's duration")
    print(json.dumps(asyncio.run(check(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
