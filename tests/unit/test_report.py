from __future__ import annotations

from pathlib import Path

from bench.report import render, render_markdown
from bench.results import RunResult
from tests.unit.conftest import make_run, measured


def test_failed_implementation_is_reported_with_its_reason(sample_run: RunResult) -> None:
    text = render_markdown(sample_run, None)
    assert "**python-asyncio was not measured** (failed): exited with status 1" in text
    assert "| python-asyncio | **failed** |" in text
    assert "boom" in text


def test_results_table_row_carries_the_measured_percentiles(sample_run: RunResult) -> None:
    go = sample_run.implementation("go")
    assert go.load is not None
    row = next(line for line in render_markdown(sample_run, None).splitlines()
               if line.startswith("| go |"))  # fmt: skip
    assert f"| {go.load.latency_ms.p99:.2f} |" in row


def test_a_saturated_generator_is_called_out() -> None:
    run = make_run(measured("go", [1000] * 100, generator_cpu=97.0))
    text = render_markdown(run, None)
    assert "the load generator was the limit" in text
    assert "97 ⚠" in text


def test_render_writes_markdown_html_and_plot(tmp_path: Path, sample_run: RunResult) -> None:
    md, html = render(sample_run, tmp_path)
    assert (tmp_path / "latency_spectrum.png").stat().st_size > 1000
    assert "![latency by percentile](latency_spectrum.png)" in md.read_text()
    page = html.read_text()
    assert '<img alt="latency by percentile" src="latency_spectrum.png"' in page
    assert "<table>" in page


def test_no_plot_when_nothing_was_measured(tmp_path: Path) -> None:
    run = make_run()
    md, _ = render(run, tmp_path)
    assert not (tmp_path / "latency_spectrum.png").exists()
    assert "latency_spectrum.png" not in md.read_text()
