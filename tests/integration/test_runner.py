"""The harness end to end on the fan-out pattern: real processes, real sockets, real Locust."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from bench.catalog import Pattern
from bench.cli import PARTS
from bench.report.write import render
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.stats.percentiles import decode
from bench.stats.slo import Slo, meets
from bench.stats.summary import slo_point
from bench.store import load_run
from tests.integration.conftest import REPO, PatternFactory, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

Options = Callable[..., RunOptions]


def run(pattern: Pattern, options: RunOptions) -> PatternRun:
    runner = PatternRun(pattern, options, QuietProgress(), PARTS)
    runner.execute()
    return runner


@shared_machine
def test_both_implementations_verified_measured_in_interleaved_trials_stored_and_reported(
    fanout_variant: PatternFactory, options: Options
) -> None:
    runner = run(fanout_variant(), options())
    result = load_run(runner.run_dir / "run.json")
    assert [i.name for i in result.implementations] == ["python-asyncio", "go"]
    assert result.scenario.engine == "loadgen"
    assert result.scenario.load_model == "open-loop"
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.stderr_tail)
        (point,) = impl.points
        assert point.target_rps == 150.0
        assert [t.index for t in point.trials] == [0, 1]
        for trial in point.trials:
            load = trial.load
            assert trial.valid, trial.invalid_reasons
            assert load.requests == pytest.approx(300, abs=3)  # 150 req/s for 2 s
            assert load.achieved_rps == pytest.approx(150, rel=0.03)
            assert load.errors == 0
            assert decode(load.histogram).get_total_count() == load.requests
            assert load.uncorrected_ms is not None
            assert load.slip_ms is not None
            assert load.uncorrected_ms.p50 <= load.latency_ms.p50
            assert trial.process.peak_rss_bytes > 1_000_000
            # Server-side metrics cover the same window as the client's latencies.
            served = trial.server_metrics['fanout_requests_total{code="200"}']
            assert abs(served - load.requests) <= max(10, 0.05 * load.requests)
            assert trial.server_latency_ms["p50_low"] < trial.server_latency_ms["p50_high"]
        assert 0 < point.summary["p50"].low <= point.summary["p50"].median
        assert point.summary["p50"].median <= point.summary["p50"].high
        assert point.summary["throughput_rps"].n == 2
    # Trials ran interleaved, every other round reversed: python, go, go, python (each trial a
    # fresh process).
    logs = sorted((runner.run_dir / "logs").glob("*/rate-150-trial-*/loadgen.json"))
    order = sorted(logs, key=lambda p: p.stat().st_mtime)
    assert [p.parent.parent.name for p in order] == ["python-asyncio", "go", "go", "python-asyncio"]
    env = result.environment
    assert env.git_sha
    assert env.go
    assert env.libraries["locust"]
    assert not set(env.cpusets.system) & set(env.cpusets.loadgen) or env.cpusets.shared
    md, html = render(result, runner.run_dir)
    assert "| python-asyncio | 150 | yes |" in md.read_text()
    assert (runner.run_dir / "latency_spectrum_150.png").stat().st_size > 1000
    assert "latency_spectrum_150.png" in html.read_text()


@shared_machine
def test_locust_open_loop_and_closed_loop_engines(
    fanout_variant: PatternFactory, options: Options
) -> None:
    open_loop = run(fanout_variant(), options(["go"], engine="locust", trials="1"))
    (point,) = load_run(open_loop.run_dir / "run.json").implementation("go").points
    load = point.trials[0].load
    assert (load.engine, load.load_model, load.target_rps) == ("locust", "open-loop", 150.0)
    assert load.achieved_rps == pytest.approx(150, rel=0.05)
    assert load.uncorrected_ms is not None
    closed = run(
        fanout_variant(),
        options(["go"], engine="locust", load_model="closed-loop", trials="1"),
    )
    result = load_run(closed.run_dir / "run.json")
    assert result.scenario.rates == []
    (point,) = result.implementation("go").points
    load = point.trials[0].load
    assert (load.load_model, load.target_rps, load.uncorrected_ms) == ("closed-loop", 100.0, None)
    assert load.requests > 100


@shared_machine
def test_a_sweep_marks_the_knee_against_the_slo(
    fanout_variant: PatternFactory, options: Options
) -> None:
    # A constant 2 ms backend and an SLO whose p99 bound only the lower rate meets: the
    # higher rate fills the single Python process well past its capacity.
    runner = run(
        fanout_variant(),
        options(["python-asyncio"], rates="100,6000", trials="1", backend_dist="constant",
                backend_median_ms="2", backend_tail_p="0", slo="p99<=40ms,errors<=1%"),
    )  # fmt: skip
    impl = load_run(runner.run_dir / "run.json").implementation("python-asyncio")
    assert [p.target_rps for p in impl.points] == [100.0, 6000.0]
    assert impl.knee_rps == 100.0
    assert impl.points[1].summary["p99"].median > 40.0


@shared_machine
def test_find_max_searches_the_highest_rate_meeting_the_slo(
    fanout_variant: PatternFactory, options: Options
) -> None:
    slo = Slo.parse("p99<=100ms,errors<=1%")
    runner = run(
        fanout_variant(),
        options(["python-asyncio"], find_max="true", rate="800", trials="1", duration_s="1.5",
                warmup_s="0.5", backend_dist="constant", backend_median_ms="2",
                backend_tail_p="0", slo="p99<=100ms,errors<=1%"),
    )  # fmt: skip
    impl = load_run(runner.run_dir / "run.json").implementation("python-asyncio")
    search = impl.search
    assert search is not None
    assert search.best_rate is not None
    assert search.first_failing_rate is not None
    assert search.best_rate < search.first_failing_rate
    rates = [p.target_rps or 0.0 for p in impl.points]
    assert rates == sorted(rates)
    assert rates[0] == 800.0
    assert len(rates) == len(set(rates)) <= 12
    by_rate = {p.target_rps: p for p in impl.points}
    assert meets(slo_point(by_rate[search.best_rate], slo), slo)
    assert not meets(slo_point(by_rate[search.first_failing_rate], slo), slo)


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
    assert go.points == []
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
        f"python-asyncio: not ready (http probe /healthz on 127.0.0.1:{python_port}) after 1.5 s"
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
