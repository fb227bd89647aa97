"""The report's per-request sections: CPU by process and counters per request (pure logic, on
synthetic results), and a labelled histogram summed over its labels."""

from __future__ import annotations

from bench.collect.prometheus import histogram_buckets, series_total
from bench.models import ImplementationResult, ProcessStats, RunResult
from bench.report.per_request import counted, section
from tests.unit.conftest import make_run, measured


def with_parts(impl: ImplementationResult, metrics: dict[str, float]) -> ImplementationResult:
    part = ProcessStats(cpu_seconds=1.0, cpu_percent=5.0, peak_rss_bytes=1)
    points = [
        p.model_copy(update={"trials": [
            t.model_copy(update={"server_metrics": metrics, "system_parts": {"postgres": part}})
            for t in p.trials]})
        for p in impl.points
    ]  # fmt: skip
    return impl.model_copy(update={"points": points})


def run_of(metrics: dict[str, float], per_request: list[str]) -> RunResult:
    run = make_run(with_parts(measured("svc", [1000] * 100, rates=(100.0,)), metrics))
    return run.model_copy(
        update={"scenario": run.scenario.model_copy(update={"per_request": per_request})}
    )


def test_cpu_per_request_by_process() -> None:
    text = "\n".join(section(run_of({}, [])).lines)
    assert "## CPU per request, by process" in text
    assert "| implementation | target req/s | own µs | postgres µs | total µs |" in text
    # make_load answers 100 requests in 10 s: 5% of a core is 5,000 µs a request.
    row = next(line for line in text.splitlines() if line.startswith("| svc |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "5,000"
    assert float(cells[2].split()[0].replace(",", "")) >= 10_000
    assert "## Counted per request" not in text


def test_counters_per_request_exact_or_summed() -> None:
    metrics = {'calls_total{role="app"}': 300.0, 'calls_total{role="relay"}': 100.0, "tx_total": 50}
    assert counted(metrics, 'calls_total{role="app"}') == 300.0
    assert counted(metrics, "calls_total") == 400.0
    assert counted(metrics, "missing_total") is None
    text = "\n".join(section(run_of(metrics, ['calls_total{role="app"}', "calls_total"])).lines)
    assert '| `calls_total{role="app"}` | `calls_total` |' in text
    load = measured("svc", [1000] * 100).points[0].trials[0].load
    assert f"| {3 * 100 / load.requests:.2f} | {4 * 100 / load.requests:.2f} |" in text


def test_a_labelled_histogram_is_summed_by_bound() -> None:
    metrics = {
        'h_bucket{code="200",le="0.1"}': 3.0,
        'h_bucket{code="200",le="+Inf"}': 4.0,
        'h_bucket{code="503",le="0.1"}': 1.0,
        'h_bucket{code="503",le="+Inf"}': 1.0,
        'h_count{code="200"}': 4.0,
        'h_count{code="503"}': 1.0,
    }
    assert histogram_buckets(metrics, "h") == [(0.1, 4.0), (float("inf"), 5.0)]
    assert series_total(metrics, "h_count") == 5.0
