"""The per-call section: CPU and bytes per call, streaming figures, and the label contrasts."""

from __future__ import annotations

from bench.models import ImplementationResult
from bench.report import calls
from tests.unit.conftest import make_run, measured


def labelled(name: str, latency_us: int, **labels: str) -> ImplementationResult:
    impl = measured(name, [latency_us] * 50, rates=(100.0, 200.0))
    return impl.model_copy(update={"labels": labels})


def test_cpu_per_call_is_the_process_cpu_over_the_calls_answered() -> None:
    run = make_run(measured("go", [1000] * 50))
    point = run.implementations[0].points[0]
    # make_trial: CPU 10 + index % of one core; 50 calls in a 10 s window: 5 calls/s.
    cpu = point.summary["cpu_us_per_call"]
    assert cpu.median == 0.11 * 1e6 / 5
    table = calls.cost_table(run)
    # Calls/s per core is its inverse, the interval's ends swapped: 1e6 / 22,000 µs ≈ 45.5.
    assert table[4].split(" | ")[3].startswith("45.5 (")
    assert table[0] == "## Cost per call"
    assert "bytes on the wire" not in table[2]  # no engine counted them


def test_implementations_that_differ_in_one_label_are_contrasted() -> None:
    run = make_run(
        labelled("python-grpc", 2000, transport="grpc", runtime="python"),
        labelled("python-rest", 4000, transport="rest", runtime="python"),
        labelled("go-grpc", 1000, transport="grpc", runtime="go"),
        labelled("go-rest", 1500, transport="rest", runtime="go"),
    )
    bullets = calls.contrasts(run)
    # Four pairs differ in one label (two by transport, two by runtime); the diagonals in two.
    assert len(bullets) == 4
    first = bullets[0]
    assert first.startswith("- **transport: grpc vs rest** (runtime python, python-grpc vs ")
    assert "at 100 calls/s" in first
    assert "ms p99 (0.50×)" in first
    assert any(b.startswith("- **runtime: python vs go** (transport grpc, ") for b in bullets)


def test_no_labels_no_reading_and_no_stream_table() -> None:
    run = make_run(measured("go", [1000] * 50), measured("python", [2000] * 50))
    section = calls.section(run)
    assert section.reading == []
    assert calls.stream_table(run) == []


def test_a_none_label_is_the_reference_its_other_values_are_contrasted_with() -> None:
    run = make_run(
        labelled("plain", 1000, path="edge", feature="none"),
        labelled("auth", 1200, path="edge", feature="auth"),
        labelled("tracing", 1100, path="edge", feature="tracing"),
        labelled("direct", 900, path="direct", feature="none"),
    )
    bullets = calls.contrasts(run)
    pairs = [b.split("**")[1] for b in bullets]
    assert pairs == ["feature: none vs auth", "feature: none vs tracing", "path: edge vs direct"]
