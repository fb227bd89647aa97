"""The db pattern's two services against a real PostgreSQL: the contract's vectors, the unit of
work under contention, the round trips batching saves, the outbox relay, and a database that is
unreachable or restarting (503 with Retry-After, then back, with no restart of the service)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.launch.probes import HttpProbe, HttpSpec
from bench.launch.verify import load_vectors
from systems.db.postgres import SCARCE_STOCK
from tests.integration.db_stack import (
    SERVICES,
    Database,
    get,
    low_port,
    request,
    start_database,
    start_relay,
    start_service,
)
from tests.integration.service_process import ROOT, Proc, metric

pytestmark = pytest.mark.usefixtures("go_binaries")

IMPLS = list(SERVICES)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    database = start_database(pause_s=1.5)
    yield database
    database.proc.stop()


def test_the_contract_vectors(db: Database, procs: list[Proc]) -> None:
    vectors = load_vectors(ROOT / "systems" / "db" / "vectors.json")
    for impl in IMPLS:
        db.reset()  # the first vector's order is id 1
        proc, addr = start_service(impl, db)
        procs.append(proc)
        host, port = addr.rsplit(":", 1)
        problems = HttpProbe().verify(HttpSpec(), host, int(port), vectors)
        assert problems == [], f"{impl}: {problems}"


@pytest.mark.parametrize("impl", IMPLS)
def test_concurrent_orders_take_the_stock_once(impl: str, db: Database, procs: list[Proc]) -> None:
    """15 orders at once for an item with 10 in stock: 10 are made, 5 refused, none half-made."""
    db.reset()
    proc, addr = start_service(impl, db, "--pool-size", "8")
    procs.append(proc)
    scarce = 2000
    body = {"customer_id": "c-9", "lines": [{"item_id": 5, "quantity": 1},
                                             {"item_id": scarce, "quantity": 1}]}  # fmt: skip
    with ThreadPoolExecutor(15) as pool:
        answers = list(pool.map(lambda _: request(addr, "POST", "/orders", body), range(15)))
    codes = sorted(a[0] for a in answers)
    assert codes == [201] * SCARCE_STOCK + [409] * 5, [a[1] for a in answers]
    [row] = db.sql("SELECT stock FROM items WHERE id = $1", scarce)
    assert row["stock"] == 0
    [made] = db.sql("SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM outbox) AS x,"
                    " (SELECT count(*) FROM order_lines) AS l")  # fmt: skip
    assert (made["o"], made["x"], made["l"]) == (10, 10, 20)
    [five] = db.sql("SELECT stock, initial_stock FROM items WHERE id = 5")
    assert five["initial_stock"] - five["stock"] == 10


@pytest.mark.parametrize("impl", IMPLS)
def test_batching_saves_round_trips(impl: str, db: Database, procs: list[Proc]) -> None:
    """20 ids as one query, then as 20: pg_stat_statements counts the difference."""
    proc, addr = start_service(impl, db, "--pool-size", "1")
    procs.append(proc)
    ids = ",".join(str(i) for i in range(100, 120))
    counts = {}
    for mode in ("any", "each"):
        get(addr, f"/items?ids={ids}&mode={mode}")  # the statements prepared once
        before = db.counted()
        for _ in range(5):
            status, body, _ = get(addr, f"/items?ids={ids}&mode={mode}")
            assert status == 200
            assert len(json.loads(body)["items"]) == 20
        counts[mode] = (db.counted() - before) / 5
    assert counts["any"] < 3, counts  # the query (and a pool's reset, if it sends one)
    assert counts["each"] - counts["any"] >= 19, counts
    assert metric(addr, "db_pool_acquire_seconds_count") >= 12
    assert metric(addr, "db_conn_held_seconds_count") >= 12
    assert metric(addr, "db_query_duration_seconds_count", query="item_each") >= 120


def test_the_relay_publishes_every_order(db: Database, procs: list[Proc]) -> None:
    db.reset()
    relay, relay_addr = start_relay(db)
    procs.append(relay)
    proc, addr = start_service("go-pgx", db)
    procs.append(proc)
    for i in range(20):
        order = {"customer_id": f"c-{i}", "lines": [{"item_id": 1 + i, "quantity": 1}]}
        status, _, _ = request(addr, "POST", "/orders", order)
        assert status == 201
    until = time.monotonic() + 15
    while time.monotonic() < until:
        [row] = db.sql("SELECT count(*) AS n FROM sink_events")
        if row["n"] == 20:
            break
        time.sleep(0.1)
    [row] = db.sql("SELECT count(*) AS sent FROM outbox WHERE sent_at IS NOT NULL")
    assert row["sent"] == 20
    assert metric(relay_addr, "outbox_published_total") >= 20
    assert metric(relay_addr, "outbox_lag_seconds_count") >= 20


@pytest.mark.parametrize("impl", IMPLS)
def test_an_unreachable_database_is_a_503(impl: str, procs: list[Proc]) -> None:
    """Started with no database at its address: it serves, and says 503 with Retry-After."""
    port = low_port()
    argv = [*SERVICES[impl], "--listen", "127.0.0.1:0",
            "--dsn", f"postgresql://bench_app@127.0.0.1:{port}/bench", "--items", "10"]  # fmt: skip
    proc = Proc(argv)
    procs.append(proc)
    addr = proc.wait_listening(timeout=20)[0]
    assert get(addr, "/healthz")[0] == 200
    order = {"customer_id": "c", "lines": [{"item_id": 1, "quantity": 1}]}
    for method, path, body in (("GET", "/items/1", None), ("GET", "/items?ids=1,2", None),
                               ("POST", "/orders", order)):  # fmt: skip
        status, answer, headers = request(addr, method, path, body)
        assert status == 503, (path, answer)
        assert headers.get("Retry-After") == "1"
        assert json.loads(answer)["error"]["code"] == "unavailable"
    assert metric(addr, "db_unavailable_total") >= 3


@pytest.mark.parametrize("impl", IMPLS)
def test_a_restart_is_survived_without_restarting(
    impl: str, db: Database, procs: list[Proc]
) -> None:
    proc, addr = start_service(impl, db)
    procs.append(proc)
    assert get(addr, "/items/1")[0] == 200
    db.restart()
    time.sleep(0.5)  # down for 1.5 s
    status, answer, headers = get(addr, "/items/2")
    assert status == 503, answer
    assert headers.get("Retry-After") == "1"
    db.wait_up()
    until, statuses = time.monotonic() + 15, []
    while time.monotonic() < until:
        statuses.append(get(addr, "/items/3")[0])
        if statuses[-1] == 200:
            break
        time.sleep(0.05)
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}, statuses
    body = {"customer_id": "c-r", "lines": [{"item_id": 9, "quantity": 1}]}
    assert request(addr, "POST", "/orders", body)[0] == 201
    assert proc.popen.poll() is None
