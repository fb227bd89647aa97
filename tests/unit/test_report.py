from __future__ import annotations

from pathlib import Path

from bench.models import Estimate, RunResult
from bench.report.markdown import render_markdown
from bench.report.plots import throughput_latency
from bench.report.write import render
from tests.unit.conftest import make_run, measured


def test_failed_implementation_is_reported_with_its_reason(sample_run: RunResult) -> None:
    text = render_markdown(sample_run, None, [])
    assert "**python-asyncio was not measured in full** (failed): exited with status 1" in text
    assert "| python-asyncio | **failed** |" in text
    assert "boom" in text


def test_results_row_carries_median_and_interval(sample_run: RunResult) -> None:
    summary = sample_run.implementation("go").points[0].summary
    p95, p99 = summary["p95"], summary["p99"]
    text = render_markdown(sample_run, None, [])
    assert "| p50 ms | p95 ms | p99 ms | p99.9 ms |" in text
    row = next(line for line in text.splitlines() if line.startswith("| go |"))
    assert (
        f"| {p95.median:.2f} ({p95.low:.2f} to {p95.high:.2f}) "
        f"| {p99.median:.2f} ({p99.low:.2f} to {p99.high:.2f}) |"
    ) in row
    assert "| 1.00 to 2.00 |" in row  # the bucket the server's p99 lies in


def test_the_scenario_names_the_engine_and_its_table_as_used(sample_run: RunResult) -> None:
    text = render_markdown(sample_run, None, [])
    assert "Engine `loadgen` (open-loop): path `/catalog?k={k}`." in text


def test_implementations_with_tables_of_their_own_get_a_line_per_table(
    sample_run: RunResult,
) -> None:
    rest, grpc = {"path": "/v1/recommend"}, {"grpc_method": "/a.B/C"}
    spec = {"by_implementation": {"py-rest": rest, "py-grpc": grpc, "go-rest": rest}}
    run = sample_run.model_copy(
        update={"scenario": sample_run.scenario.model_copy(update={"engine_spec": spec})}
    )
    text = render_markdown(run, None, [])
    assert (
        "Engine `loadgen` (open-loop):\n\n- py-rest, go-rest: path `/v1/recommend`"
        "\n- py-grpc: grpc_method `/a.B/C`." in text
    )


def test_a_generator_limited_point_is_called_out_and_marked_invalid() -> None:
    run = make_run(measured("go", [1000] * 100, generator_cpu=97.0))
    text = render_markdown(run, None, [])
    assert "go at 100 req/s: 3 of 3 trials were limited by the load generator" in text
    assert "not the system's figure" in text
    row = next(line for line in text.splitlines() if line.startswith("| go |"))
    assert "| **no** |" in row


def test_the_knee_is_stated() -> None:
    run = make_run(
        measured("go", [1000] * 100, rates=(100.0, 200.0), knee=200.0), slo="p99 ≤ 50 ms"
    )
    assert "**go meets p99 ≤ 50 ms up to 200 req/s**" in render_markdown(run, None, [])


def test_a_large_client_server_gap_is_explained() -> None:
    run = make_run(measured("go", [40_000] * 100))  # client p99 40 ms, server p99 ≤ 2 ms
    text = render_markdown(run, None, [])
    assert "client p99 40.41 ms vs server p99 at most 2.00 ms" in text


def test_render_writes_markdown_html_curves_and_spectra(tmp_path: Path) -> None:
    run = make_run(measured("go", [1000 + i for i in range(500)], rates=(100.0, 200.0), knee=200.0))
    md, html = render(run, tmp_path)
    for png in ("throughput_latency.png", "latency_spectrum_100.png", "latency_spectrum_200.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert f"]({png})" in md.read_text()
        assert f'src="{png}"' in html.read_text()
    page = html.read_text()
    # The folded trial and metric tables are tables in the HTML too, not raw Markdown.
    assert page.count("<table>") == 4  # results, cost per call, every trial, server metrics
    assert "<details>" in page
    assert "| go |" not in page


def test_what_a_time_budget_cut_is_a_verdict(sample_run: RunResult) -> None:
    scenario = sample_run.scenario.model_copy(
        update={"notes": ["time budget 90 s: … cut trials 3 → 2 (about 80 s)"]}
    )
    text = render_markdown(sample_run.model_copy(update={"scenario": scenario}), None, [])
    assert "- Time budget 90 s: … cut trials 3 → 2 (about 80 s)." in text


def test_the_device_an_implementation_got_is_in_the_environment(sample_run: RunResult) -> None:
    assert "GPUs" not in render_markdown(sample_run, None, [])
    go = sample_run.implementations[0].model_copy(update={"device": "cuda:0 (NVIDIA H200)"})
    env = sample_run.environment.model_copy(update={"gpus": ["NVIDIA H200"]})
    run = sample_run.model_copy(
        update={"implementations": [go, *sample_run.implementations[1:]], "environment": env}
    )
    assert "- GPUs: NVIDIA H200; go on cuda:0 (NVIDIA H200)" in render_markdown(run, None, [])


def test_the_curve_is_drawn_against_offered_load_even_past_overload(tmp_path: Path) -> None:
    impl = measured("go", [1000] * 100, rates=(100.0, 200.0, 400.0))
    falling = []  # achieved throughput falls past overload: 100, 200, then 150
    for point, done in zip(impl.points, (100.0, 200.0, 150.0), strict=True):
        e = Estimate(median=done, low=done, high=done, n=3)
        falling.append(point.model_copy(update={"summary": {**point.summary, "throughput_rps": e}}))
    run = make_run(impl.model_copy(update={"points": falling}))
    assert throughput_latency(run, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    assert not throughput_latency(make_run(measured("go", [1000] * 100)), tmp_path / "one.png")


def test_no_plot_when_nothing_was_measured(tmp_path: Path) -> None:
    md, _ = render(make_run(), tmp_path)
    assert list(tmp_path.glob("*.png")) == []
    assert ".png" not in md.read_text()
