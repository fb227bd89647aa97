"""The pool study's report section, on a synthetic study with known figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.models import Estimate, ImplementationResult, RunResult, Study
from bench.report import write as report
from bench.studies import pools_report
from bench.studies.pools import PoolStudy
from bench.studies.pools_data import FreeThreaded, Measurement, PoolResults, Role, to_study
from bench.studies.pools_figures import (
    CROSSOVER_PNG,
    SCALING_PNG,
    crossing,
    efficiency,
    overhead_us,
    speedup_over_inline,
)
from bench.studies.pools_plan import Variant
from tests.unit.conftest import make_run, measured

SPIN, BIG, SMALL = Variant("spin", 0), Variant("hash", 1 << 20), Variant("hash", 64)
ROLES = [
    Role(name="python-sync", pool="inline", language="python"),
    Role(name="python-threads", pool="threads", language="python", baseline="python-sync"),
    Role(name="python-processes", pool="processes", language="python", baseline="python-sync"),
    Role(name="go", pool="goroutines", language="go"),
]


def m(
    impl: str,
    variant: Variant,
    task_ms: float,
    workers: int,
    rate: float,
    measured_ms: float | None = None,
) -> Measurement:
    tasks = 8
    return Measurement(
        implementation=impl,
        source="go-bench" if impl == "go" else "pyperf",
        kernel=variant.kernel,
        size=variant.size,
        rounds=1000,
        tasks=tasks,
        task_ms=task_ms,
        workers=workers,
        batch_seconds=[tasks / rate] * 3,
        throughput=Estimate(median=rate, low=0.98 * rate, high=1.02 * rate, n=3),
        measured_task_ms=task_ms if measured_ms is None else measured_ms,
    )


def results(**changes: Any) -> PoolResults:
    ms: list[Measurement] = []
    for v, threads2 in ((SPIN, 100.0), (BIG, 190.0), (SMALL, 95.0)):  # 10 ms tasks
        ms += [m("python-sync", v, 10, 1, 100), m("python-threads", v, 10, 1, 100),
               m("python-threads", v, 10, 2, threads2), m("python-processes", v, 10, 1, 98),
               m("python-processes", v, 10, 2, 196), m("go", v, 10, 1, 100),
               m("go", v, 10, 2, 198)]  # fmt: skip
    # Crossover: inline 10,000/s at 0.1 ms; one worker process adds 100 µs a task.
    for task_ms, inline, proc1, proc2 in ((0.1, 10_000, 5_000, 5_000), (1, 1_000, 900, 1_500)):
        ms += [m("python-sync", SPIN, task_ms, 1, inline),
               m("python-threads", SPIN, task_ms, 2, 0.9 * inline),
               m("python-processes", SPIN, task_ms, 1, proc1),
               m("python-processes", SPIN, task_ms, 2, proc2),
               m("go", SPIN, task_ms, 1, inline),
               m("go", SPIN, task_ms, 2, 1.9 * inline)]  # fmt: skip
    base = PoolResults(
        cpus=[0, 1],
        scaling_ms=10,
        task_ms=[0.1, 1, 10],
        roles=ROLES,
        free_threaded=FreeThreaded(available=False, note="not available: looked for python3.13t"),
        measurements=ms,
        ns_per_round={"python/spin": 200.0, "go/spin": 2.0},
        calibration={
            "python/spin": Estimate(median=210.0, low=205.0, high=230.0, n=7),
            "go/spin": Estimate(median=2.1, low=2.0, high=2.2, n=5),
        },
        service_task={"kernel": "spin", "rounds": 5000},
    )
    return replace(base, **changes)


def study(**changes: Any) -> Study:
    return to_study("pools", {"scaling_ms": 10}, results(**changes))


def with_study(run: RunResult, s: Study | None = None) -> RunResult:
    return run.model_copy(update={"studies": [s or study()]})


def test_the_figures_follow_their_definitions() -> None:
    r = results()
    assert efficiency(r, "python-threads", SPIN, 10) == pytest.approx(0.5)
    assert efficiency(r, "python-threads", BIG, 10) == pytest.approx(0.95)
    assert efficiency(r, "python-processes", SPIN, 10) == pytest.approx(1.0)
    assert speedup_over_inline(r, "python-processes", SPIN, 0.1, 2) == pytest.approx(0.5)
    assert speedup_over_inline(r, "go", SPIN, 1, 2) == pytest.approx(1.9)  # against go ×1
    assert overhead_us(r, "python-processes", 0.1) == pytest.approx(100.0)
    assert efficiency(r, "python-sync", SPIN, 10) is None  # one worker only


def test_the_baseline_comes_from_the_table_not_from_a_name() -> None:
    renamed = [r.model_copy(update={"baseline": "inline-py"}) if r.baseline else r for r in ROLES]
    renamed[0] = renamed[0].model_copy(update={"name": "inline-py"})
    ms = [
        replace(x, implementation="inline-py") if x.implementation == "python-sync" else x
        for x in results().measurements
    ]
    r = results(roles=renamed, measurements=ms)
    assert speedup_over_inline(r, "python-processes", SPIN, 0.1, 2) == pytest.approx(0.5)


def test_crossing_interpolates_on_log_axes() -> None:
    assert crossing([(0.1, 0.5), (10.0, 1.5)], 1.0) == pytest.approx(1.0)
    assert crossing([(0.1, 1.2), (1.0, 1.5)], 1.0) == 0.1
    assert crossing([(0.1, 0.5), (1.0, None), (10.0, 0.8)], 1.0) is None


def test_the_reading_states_each_finding_with_its_figures() -> None:
    run = make_run(measured("go", [1000 + i for i in range(100)]))
    text = "\n".join(pools_report.reading(results(), run))
    assert (
        "efficiency at 2 workers** (1.0 is perfect, 0.50 no gain): python-processes 1.00 " in text
    )
    assert "(scales); go 0.99 (scales)." in text
    assert "Threads scale only when the kernel releases the GIL:** 2 threads give" in text
    assert "1.00× one thread on spin (the GIL" in text
    assert "1.90× one thread on hash 1 MiB (hashlib releases the GIL" in text
    assert "0.95× one thread on hash 64 B" in text
    assert (
        "needs tasks large enough to hide its overhead:** at 0.1 ms it runs 0.50× the inline rate "
        in text
    )
    assert "about 100 µs more on a worker process" in text
    # Speedup 0.5 at 0.1 ms and 1.5 at 1 ms: break-even at 10^(log10(0.1) + 0.5) ms.
    assert "breaks even near 0.32 ms" in text
    assert "**Fastest Python form by task size** (speedup over inline): " in text
    assert "0.1 ms: python-sync (1.00×); 1 ms: python-processes (1.50×)" in text
    assert "**Go runs the same kernel about 100 times faster** (2.00 ns against 200 ns" in text
    assert "task of 5,000 rounds is 1.00 ms of Python and 10.0 µs of Go" in text
    assert "Free-threaded CPython: not available: looked for python3.13t" in text
    assert "open-loop" not in text  # one rate, no SLO: nothing to say of the services


def test_the_report_carries_the_reading_first_and_the_pool_sections(tmp_path: Path) -> None:
    run = with_study(make_run(measured("go", [1000 + i for i in range(100)])))
    section = PoolStudy().section(run.studies[0], run, tmp_path)
    md, html = report.render(run, tmp_path, [section])
    text = md.read_text()
    assert text.index("## Reading") < text.index("## Verdicts") < text.index("## Pools without")
    assert (
        "| spin | python-threads | 100 (98 to 102) | 100 (98 to 102) | 0.50 | 1.00 | 10 |" in text
    )
    assert "| 0.1 ms | 10,000 (9,800 to 10,200) |" in text
    assert "(pyperf for Python, `go test -bench` for Go)" in text
    assert "python-sync for python-threads, python-processes; the 1-worker pool for go" in text
    assert "Every configuration's task was within ±10% of the size asked" in text
    assert "Calibration (per kernel round): go/spin 2.00 ns, python/spin 200.00 ns." in text
    assert (tmp_path / SCALING_PNG).stat().st_size > 10_000
    assert (tmp_path / CROSSOVER_PNG).stat().st_size > 10_000
    assert "<h2>Pools without a network</h2>" in html.read_text()


def test_a_task_that_missed_its_size_is_named_with_its_measured_size(tmp_path: Path) -> None:
    ms = results().measurements
    ms[0] = replace(ms[0], measured_task_ms=6.2)  # python-sync, spin 10 ms
    run = with_study(make_run(), study(measurements=ms))
    text = "\n".join(PoolStudy().section(run.studies[0], run, tmp_path).lines)
    assert "**Task sizes that missed the size asked by more than ±10%**" in text
    assert "python-sync ×1, spin 10 ms: 6.2 ms" in text
    assert "| spin | python-sync | 100 (98 to 102) | — | — | — | 6.2 |" in text


def test_a_run_without_a_study_has_no_pool_sections(tmp_path: Path) -> None:
    run = make_run(measured("go", [1000 + i for i in range(100)]))
    md, _ = report.render(run, tmp_path)
    assert "Pools without" not in md.read_text()
    assert "## Reading" not in md.read_text()


def test_the_reading_tells_a_bounded_refusal_from_a_backlog_before_the_service() -> None:
    def overloaded(name: str, p99_ms: float) -> ImplementationResult:
        impl = measured(name, [1000] * 50, rates=(100.0, 200.0), knee=100.0)
        top = impl.points[-1]
        summary = {**top.summary, "error_rate": Estimate(median=0.25, low=0.2, high=0.3, n=3),
                   "p99": Estimate(median=p99_ms, low=p99_ms, high=p99_ms, n=3)}  # fmt: skip
        return impl.model_copy(
            update={"points": [impl.points[0], top.model_copy(update={"summary": summary})]}
        )

    run = make_run(
        overloaded("python-sync", 78.0), overloaded("python-threads", 4161.0), slo="p99<=50ms"
    )
    text = "\n".join(pools_report.reading(results(), run))
    assert "python-sync refused 25.0% at 200 req/s with p99 78 ms" in text
    assert "python-threads refused 25.0% at 200 req/s with p99 4,161 ms" in text
    assert "beside refusals (python-threads) means requests waited before the service" in text
    assert "the workers hold the GIL the event loop needs" in text
