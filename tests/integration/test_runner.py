"""The harness end to end on the fan-out pattern: real processes, real sockets, real Locust."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from bench.catalog import Pattern
from bench.report import render
from bench.results import load_run
from bench.runner import PatternRun, QuietProgress, RunOptions
from bench.stats import decode
from tests.integration.conftest import REPO, PatternFactory

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

Options = Callable[..., RunOptions]


def run(pattern: Pattern, options: RunOptions) -> PatternRun:
    runner = PatternRun(pattern, options, QuietProgress())
    runner.execute()
    return runner


def test_both_implementations_verified_measured_stored_and_reported(
    fanout_variant: PatternFactory, options: Options
) -> None:
    runner = run(fanout_variant(), options())
    result = load_run(runner.run_dir / "run.json")
    assert [i.name for i in result.implementations] == ["python-asyncio", "go"]
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.stderr_tail)
        assert impl.load is not None
        assert impl.process is not None
        assert impl.load.requests > 100
        assert impl.load.errors == 0
        assert decode(impl.load.histogram).get_total_count() == impl.load.requests
        assert 0 < impl.load.latency_ms.p50 <= impl.load.latency_ms.p99 <= impl.load.latency_ms.max
        assert impl.process.peak_rss_bytes > 1_000_000
        # Server-side metrics cover the same window as the client's latencies (up to its edges).
        served = impl.server_metrics['fanout_requests_total{code="200"}']
        assert abs(served - impl.load.requests) <= max(10, 0.05 * impl.load.requests)
        assert impl.load.duration_s == pytest.approx(3.0, abs=0.01)
        assert impl.server_metrics['fanout_backend_calls_total{backend="pricing",outcome="ok"}'] > 0
    env = result.environment
    assert env.git_sha
    assert env.go
    assert env.libraries["locust"]
    assert not set(env.cpusets.system) & set(env.cpusets.loadgen) or env.cpusets.shared
    md, html = render(result, runner.run_dir)
    assert "| python-asyncio | ok |" in md.read_text()
    assert (runner.run_dir / "latency_spectrum.png").stat().st_size > 1000
    assert "latency_spectrum.png" in html.read_text()


def test_wrong_answers_fail_verification_and_are_not_timed(
    fanout_variant: PatternFactory, options: Options
) -> None:
    def corrupt(text: str) -> str:
        doc = json.loads(text)
        doc["cases"][0]["expect"]["body"]["parts"]["pricing"]["value"] += 1
        return json.dumps(doc)

    runner = run(fanout_variant(vectors=corrupt), options(["go"]))
    go = load_run(runner.run_dir / "run.json").implementation("go")
    assert go.status == "verify_failed"
    assert go.load is None
    assert go.verify_problems == [
        "catalog sku-42: body.parts.pricing.value: expected 77937, got 77936"
    ]


def test_a_crash_mid_run_fails_that_implementation_and_the_other_still_runs(
    fanout_variant: PatternFactory, options: Options
) -> None:
    crash = str(REPO / "tests" / "integration" / "crash_after.py")

    def crashing(text: str) -> str:
        return text.replace(
            'command = ["go/bin/fanout"]',
            f'command = ["{{python}}", "{crash}", "4", "go/bin/fanout"]',
        )

    runner = run(fanout_variant(toml=crashing), options(duration_s="6"))
    result = load_run(runner.run_dir / "run.json")
    go = result.implementation("go")
    assert go.status == "failed"
    assert go.error is not None
    assert "exited with status 1 during the run" in go.error
    assert result.implementation("python-asyncio").status == "ok"


def test_port_in_use_and_readiness_timeout_are_reported_per_implementation(
    fanout_variant: PatternFactory, options: Options
) -> None:
    def never_ready(text: str) -> str:
        return text.replace(
            'command = ["{python}", "-m", "systems.fanout.service"]',
            'command = ["{python}", "-c", "import time; time.sleep(60)", "--"]\n'
            "ready_timeout_s = 1.5",
        )

    opts = options()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 8082 + opts.port_offset))
        squatter.listen()
        runner = run(fanout_variant(toml=never_ready), opts)
    result = load_run(runner.run_dir / "run.json")
    python, go = result.implementation("python-asyncio"), result.implementation("go")
    python_port, go_port = 8081 + opts.port_offset, 8082 + opts.port_offset
    assert python.status == go.status == "failed"
    assert python.error == (
        f"python-asyncio: not ready at http://127.0.0.1:{python_port}/healthz after 1.5 s"
    )
    assert go.error == f"go: port {go_port} on 127.0.0.1 is already in use"


def test_an_implementation_that_dies_at_start_reports_its_stderr(
    fanout_variant: PatternFactory, options: Options
) -> None:
    runner = run(fanout_variant(), options(["go"], fanout="99"))
    go = load_run(runner.run_dir / "run.json").implementation("go")
    assert go.status == "failed"
    assert go.error == "go: exited with status 2 during start-up"
    assert go.stderr_tail is not None
    assert "fanout" in go.stderr_tail
