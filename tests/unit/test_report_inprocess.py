"""The pool sections of the report, on a synthetic study with known figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.models import (
    Estimate,
    FreeThreaded,
    ImplementationResult,
    InProcessMeasurement,
    InProcessStudy,
)
from bench.report import write as report
from bench.studies import pools_report as report_inprocess
from bench.studies.pools import Variant
from bench.studies.pools_report import crossing, efficiency, overhead_us, speedup_over_inline
from tests.unit.conftest import make_run, measured

SPIN, BIG, SMALL = Variant("spin", 0), Variant("hash", 1 << 20), Variant("hash", 64)


def m(
    impl: str, variant: Variant, task_ms: float, workers: int, rate: float
) -> InProcessMeasurement:
    tasks = 8
    return InProcessMeasurement(
        implementation=impl,
        source="go-bench" if impl == "go" else "pyperf",
        kernel="spin" if variant.kernel == "spin" else "hash",
        rounds=1000,
        size=variant.size,
        workers=workers,
        tasks=tasks,
        task_ms=task_ms,
        batch_seconds=[tasks / rate] * 3,
        throughput=Estimate(median=rate, low=0.98 * rate, high=1.02 * rate, n=3),
    )


def study() -> InProcessStudy:
    ms: list[InProcessMeasurement] = []
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
    return InProcessStudy(
        cpus=[0, 1],
        ns_per_round={"python/spin": 200.0, "go/spin": 2.0},
        scaling_task_ms=10,
        task_ms=[0.1, 1, 10],
        free_threaded=FreeThreaded(available=False, note="not available: looked for python3.13t"),
        measurements=ms,
    )


def test_the_figures_follow_their_definitions() -> None:
    s = study()
    assert efficiency(s, "python-threads", SPIN, 10) == pytest.approx(0.5)
    assert efficiency(s, "python-threads", BIG, 10) == pytest.approx(0.95)
    assert efficiency(s, "python-processes", SPIN, 10) == pytest.approx(1.0)
    assert speedup_over_inline(s, "python-processes", SPIN, 0.1, 2) == pytest.approx(0.5)
    assert speedup_over_inline(s, "go", SPIN, 1, 2) == pytest.approx(1.9)  # against go ×1
    assert overhead_us(s, "python-processes", 0.1) == pytest.approx(100.0)
    assert efficiency(s, "python-sync", SPIN, 10) is None  # one worker only


def test_crossing_interpolates_on_log_axes() -> None:
    assert crossing([(0.1, 0.5), (10.0, 1.5)], 1.0) == pytest.approx(1.0)
    assert crossing([(0.1, 1.2), (1.0, 1.5)], 1.0) == 0.1
    assert crossing([(0.1, 0.5), (1.0, None), (10.0, 0.8)], 1.0) is None


def test_the_reading_states_each_finding_with_its_figures() -> None:
    run = make_run(measured("go", [1000 + i for i in range(100)])).model_copy(
        update={"inprocess": study()}
    )
    text = "\n".join(report_inprocess.reading(run))
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
    assert "0.1 ms: python-sync (1.00×); 1 ms: python-processes (1.50×)" in text
    assert "about 100 times faster" in text
    assert "Free-threaded CPython: not available: looked for python3.13t" in text
    assert "open-loop" not in text  # one rate, no SLO: nothing to say of the services


def test_the_report_carries_the_reading_first_and_the_pool_sections(tmp_path: Path) -> None:
    run = make_run(measured("go", [1000 + i for i in range(100)])).model_copy(
        update={"inprocess": study()}
    )
    md, html = report.render(run, tmp_path)
    text = md.read_text()
    assert text.index("## Reading") < text.index("## Verdicts") < text.index("## Pools without")
    assert "| spin | python-threads | 100 (98 to 102) | 100 (98 to 102) | 0.50 | 1.00 |" in text
    assert "| 0.1 ms | 10,000 (9,800 to 10,200) |" in text
    assert (tmp_path / report_inprocess.SCALING_PNG).stat().st_size > 10_000
    assert (tmp_path / report_inprocess.CROSSOVER_PNG).stat().st_size > 10_000
    assert "<h2>Pools without a network</h2>" in html.read_text()


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
    ).model_copy(update={"inprocess": study()})
    text = "\n".join(report_inprocess.reading(run))
    assert "python-sync refused 25.0% at 200 req/s with p99 78 ms" in text
    assert "python-threads refused 25.0% at 200 req/s with p99 4,161 ms" in text
    assert "beside refusals (python-threads) means requests waited before the service" in text
    assert "the workers hold the GIL the event loop needs" in text
