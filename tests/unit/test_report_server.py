"""The report's server-side sections: the latency split by its parts and a histogram per rate
(pure logic, on synthetic results)."""

from __future__ import annotations

from bench.models import ImplementationResult, RunResult
from bench.report.server import bucket_shares, histogram_mean, section
from tests.unit.conftest import make_run, measured

PARTS = ["svc_queue_seconds", "svc_compute_seconds"]


def histogram(name: str, observations: list[float], bounds: list[float]) -> dict[str, float]:
    """A Prometheus histogram's series as the harness stores a trial's deltas."""
    out = {f"{name}_count": float(len(observations)), f"{name}_sum": sum(observations)}
    for bound in [*bounds, float("inf")]:
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        out[f'{name}_bucket{{le="{le}"}}'] = float(sum(1 for o in observations if o <= bound))
    return out


def with_metrics(impl: ImplementationResult, metrics: dict[str, float]) -> ImplementationResult:
    points = [
        p.model_copy(update={"trials": [t.model_copy(update={"server_metrics": metrics})
                                        for t in p.trials]})
        for p in impl.points
    ]  # fmt: skip
    return impl.model_copy(update={"points": points})


def run_with(metrics: dict[str, float], **scenario: object) -> RunResult:
    run = make_run(with_metrics(measured("svc", [1000] * 100, rates=(50.0, 500.0)), metrics))
    return run.model_copy(update={"scenario": run.scenario.model_copy(update=scenario)})


def test_histogram_mean_and_bucket_shares() -> None:
    metrics = histogram("b", [1, 1, 3, 8], [1, 2, 4, 8])
    assert histogram_mean(metrics, "b") == 13 / 4
    assert bucket_shares(metrics, "b") == [
        (0.0, 1.0, 0.5), (1.0, 2.0, 0.0), (2.0, 4.0, 0.25), (4.0, 8.0, 0.25),
        (8.0, float("inf"), 0.0),
    ]  # fmt: skip
    assert histogram_mean({}, "b") is None
    assert bucket_shares({}, "b") == []


def test_parts_that_add_up_are_shown_with_their_small_gap() -> None:
    metrics = {
        **histogram("svc_queue_seconds", [0.001, 0.003], [0.01]),
        **histogram("svc_compute_seconds", [0.002, 0.002], [0.01]),
        **histogram("svc_request_duration_seconds", [0.0031, 0.0051], [0.01]),
    }
    out = section(run_with(metrics, server_latency_metric="svc_request_duration_seconds",
                           server_latency_parts=PARTS))  # fmt: skip
    text = "\n".join(out.lines)
    assert "## Where the server's time goes" in text
    assert "| queue ms | compute ms | sum ms | server latency ms |" in text
    # queue 2 ms + compute 2 ms = 4 ms against 4.1 ms: -2.4%, within 5%, so no reading.
    assert "| svc | 50 | 2 | 2 | 4 | 4.1 | -2.4% |" in text
    assert out.reading == []


def test_parts_that_miss_time_are_called_out() -> None:
    metrics = {
        **histogram("svc_queue_seconds", [0.001], [0.01]),
        **histogram("svc_compute_seconds", [0.001], [0.01]),
        **histogram("svc_request_duration_seconds", [0.004], [0.01]),
    }
    out = section(run_with(metrics, server_latency_metric="svc_request_duration_seconds",
                           server_latency_parts=PARTS))  # fmt: skip
    assert len(out.reading) == 1
    assert "svc at 50 req/s (-50.0%)" in out.reading[0]


def test_a_histogram_is_shown_per_rate_with_its_mean() -> None:
    metrics = histogram("svc_batch_size", [1, 2, 2, 16], [1, 2, 4, 8, 16, 32])
    text = "\n".join(section(run_with(metrics, server_histograms=["svc_batch_size"])).lines)
    assert "## Distribution of `svc_batch_size`" in text
    # Only buckets someone fell in are columns: 1, 2, 9 to 16.
    assert "| implementation | target req/s | mean | p99 within | 1 | 2 | 9 to 16 |" in text
    assert "| svc | 500 | 5.25 | 9 to 16 | 25% | 50% | 25% |" in text


def test_nothing_is_written_when_the_scenario_names_nothing() -> None:
    out = section(run_with(histogram("svc_batch_size", [1], [1])))
    assert out.lines == []
    assert out.reading == []


def test_parts_are_not_compared_where_the_system_refused_many() -> None:
    metrics = {
        **histogram("svc_queue_seconds", [0.001], [0.01]),
        **histogram("svc_compute_seconds", [0.001], [0.01]),
        **histogram("svc_request_duration_seconds", [0.004], [0.01]),
    }
    run = run_with(metrics, server_latency_metric="svc_request_duration_seconds",
                   server_latency_parts=PARTS)  # fmt: skip
    impl = run.implementations[0]
    refused = [
        p.model_copy(update={"trials": [t.model_copy(update={"load": t.load.model_copy(
            update={"errors": t.load.requests // 2})}) for t in p.trials]})
        for p in impl.points
    ]  # fmt: skip
    run = run.model_copy(update={"implementations": [impl.model_copy(update={"points": refused})]})
    out = section(run)
    assert out.reading == []
    assert "not comparable: 50.0% refused" in "\n".join(out.lines)
