"""Write a run's report: the plots, report.md and report.html, into the run's folder.

The sections of the run's studies are handed in (bench/cli.py asks each study's kind for its
`ReportSection`); the report knows no study.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.models import RunResult
from bench.report import calls, per_request, pricing, server
from bench.report.html import to_html
from bench.report.markdown import CURVE_PNG, render_markdown, spectrum_png
from bench.report.plots import latency_spectrum, throughput_latency
from bench.report.sections import ReportSection
from bench.store import write_atomic


def render(
    run: RunResult, run_dir: Path, sections: Sequence[ReportSection] = ()
) -> tuple[Path, Path]:
    """Write report.md, report.html and the plots into run_dir; return the two report paths."""
    curve = CURVE_PNG if throughput_latency(run, run_dir / CURVE_PNG) else None
    rates = sorted({p.target_rps for i in run.implementations for p in i.points},
                   key=lambda r: r or 0.0)  # fmt: skip
    spectra = []
    for rate in rates:
        png = spectrum_png(rate)
        if latency_spectrum(run, rate, run_dir / png):
            title = f"latency by percentile at {rate:g} req/s" if rate else "latency by percentile"
            spectra.append((title, png))
    sections = [
        calls.section(run),
        pricing.section(run),
        server.section(run),
        per_request.section(run),
        *sections,
    ]
    reading = [line for s in sections for line in s.reading]
    lines = [line for s in sections for line in s.lines]
    text = render_markdown(run, curve, spectra, reading, lines)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_atomic(md_path, text)
    write_atomic(html_path, to_html(text, f"{run.scenario.pattern} — {run.run_id}"))
    return md_path, html_path
