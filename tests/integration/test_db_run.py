"""`patternbench run db` end to end, kept short: the writes workload on both services at two pool
sizes (variants), verified against the contract's vectors, measured with PostgreSQL and the
relay as parts of the system, and reported: CPU by process, statements per request from
pg_stat_statements, the outbox's lag; the database started and stopped with the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench.catalog import load_pattern
from bench.cli import PARTS
from bench.launch.supervisor import port_in_use
from bench.models import Trial
from bench.report.write import render
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.store import load_run
from tests.integration.conftest import REPO, shared_machine
from tests.integration.db_stack import start_database

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

SHORT_DB = {"rates": "150", "trials": "1", "workload": "orders", "vary": "pool_size=2,8",
            "restart_check": "false", "slo": "p99<=500ms,errors<=1%"}  # fmt: skip
VARIANTS = ["python-asyncpg@pool_size=2", "python-asyncpg@pool_size=8", "go-pgx@pool_size=2",
            "go-pgx@pool_size=8"]  # fmt: skip


@shared_machine
def test_writes_at_two_pool_sizes(options: Callable[..., RunOptions], port_offset: int) -> None:
    pattern = load_pattern(REPO / "systems" / "db" / "system.toml", REPO, PARTS.kinds())
    runner = PatternRun(pattern, options(**SHORT_DB), QuietProgress(), PARTS)
    runner.execute()
    result = load_run(runner.run_dir / "run.json")

    assert [i.name for i in result.implementations] == VARIANTS
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.verify_problems, impl.stderr_tail)
        size = impl.name.rsplit("=", 1)[1]
        assert impl.labels["pool_size"] == size
        (trial,) = impl.points[0].trials
        assert trial.load.errors == 0, (impl.name, trial.load.error_kinds)
        # PostgreSQL and the relay are parts of the system, measured over the window.
        assert set(trial.system_parts) == {"postgres", "relay"}
        assert trial.system_parts["postgres"].cpu_seconds > 0
        m = trial.server_metrics
        assert m['db_pool_connections{state="max"}'] == float(size)
        # An order is a transaction of a few statements, counted by the database itself.
        statements = m['pg_statements_calls_total{role="bench_app"}'] / trial.load.requests
        assert 4 <= statements <= 10, (impl.name, statements)
        assert m["pg_xact_commit_total"] >= trial.load.requests * 0.9
        assert m["outbox_lag_seconds_count"] > 0
        assert m["db_pool_acquire_seconds_count"] >= trial.load.requests * 0.9

    # The database and the relay stopped with the run.
    for port in (5450, 9450, 9451):
        assert not port_in_use(port + port_offset), port

    md, _ = render(result, runner.run_dir, [])
    text = md.read_text()
    headings = [
        "## CPU per request, by process",
        "## Counted per request",
        "## Distribution of `outbox_lag_seconds`",
        "## Where the server's time goes",
    ]
    for heading in headings:
        assert heading in text, heading
    assert "| postgres µs | relay µs |" in text
    assert "**pool_size: 2 vs 8**" in text


def one_trial(options: Callable[..., RunOptions], **params: str) -> tuple[Trial, Path]:
    """go-pgx alone at one rate, one trial, without the restart study: its trial and run folder."""
    pattern = load_pattern(REPO / "systems" / "db" / "system.toml", REPO, PARTS.kinds())
    params = {"trials": "1", "restart_check": "false", **params}
    runner = PatternRun(pattern, options(["go-pgx"], **params), QuietProgress(), PARTS)
    runner.execute()
    (impl,) = load_run(runner.run_dir / "run.json").implementations
    assert impl.status == "ok", (impl.error, impl.verify_problems, impl.stderr_tail)
    (trial,) = impl.points[0].trials
    assert trial.load.errors == 0, trial.load.error_kinds
    return trial, runner.run_dir


@shared_machine
def test_the_mixed_load_through_locust(options: Callable[..., RunOptions]) -> None:
    """The mixed profile's engine: Locust's open-loop users, reads and orders in one load."""
    trial, _ = one_trial(options, rates="60", engine="locust", write_share="0.3",
                         slo="p99<=500ms,errors<=1%")  # fmt: skip
    assert trial.load.engine == "locust"
    m = trial.server_metrics
    orders = m['db_request_duration_seconds_count{code="201",route="orders"}']
    reads = m['db_request_duration_seconds_count{code="200",route="item"}']
    # About 30% orders of what was answered (a seeded draw per request, a short window).
    assert 0.15 < orders / (orders + reads) < 0.45, (orders, reads)
    assert m['db_transactions_total{outcome="commit"}'] >= orders


@shared_machine
def test_an_existing_server_given_by_database_url(
    options: Callable[..., RunOptions], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_URL set: the run starts no PostgreSQL of its own; everything uses that one."""
    db = start_database()
    try:
        monkeypatch.setenv("DATABASE_URL", db.dsn())
        before = db.counted("postgres")
        trial, run_dir = one_trial(options, rates="100")
        # The services connected as the URL's user, and that server counted their statements.
        served = trial.server_metrics['pg_statements_calls_total{role="postgres"}']
        assert served >= trial.load.requests
        assert db.counted("postgres") - before >= trial.load.requests
        log = (run_dir / "logs" / "postgres.run.log").read_text()
        assert "the server of $DATABASE_URL: none of our own" in log
    finally:
        db.proc.stop()
