"""Readable reports of a run: `report.md`, and `report.html` made from the same Markdown.

The report puts the verdicts a reader needs first (what failed, whether the load generator was
the limit), then the side-by-side table, the percentile spectrum, server-side metrics, the
scenario and the environment.
"""

from __future__ import annotations

from pathlib import Path

import markdown

from bench.plots import latency_spectrum
from bench.results import ImplementationResult, RunResult, write_atomic

SPECTRUM_PNG = "latency_spectrum.png"

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.92rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
code, pre {{ background: #f6f6f6; }}
pre {{ padding: 0.6rem; overflow-x: auto; }}
</style></head><body>
{body}
</body></html>
"""


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _offered(run: RunResult) -> str:
    p = run.scenario.params
    text = f"{p['users']} Locust users (closed-loop)"
    rate = p.get("user_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        text += f", each paced to {rate:g} req/s: {float(p['users']) * rate:g} req/s offered"
    return text


def _results_table(impls: list[ImplementationResult]) -> list[str]:
    head = ("| implementation | status | req/s | errors | p50 ms | p90 ms | p99 ms | p99.9 ms "
            "| max ms | CPU % | peak RSS MiB | generator CPU % |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]
    for i in impls:
        if i.load is None or i.process is None:
            lines.append(f"| {i.name} | **{i.status}** |" + " — |" * 10)
            continue
        lat = i.load.latency_ms
        gen = f"{i.load.generator_cpu_percent:.0f}" + (" ⚠" if i.load.generator_saturated else "")
        lines.append(
            f"| {i.name} | {i.status} | {_fmt(i.load.throughput_rps)} | {i.load.errors} "
            f"| {_fmt(lat.p50)} | {_fmt(lat.p90)} | {_fmt(lat.p99)} | {_fmt(lat.p999)} "
            f"| {_fmt(lat.max)} | {i.process.cpu_percent:.0f} | {_mib(i.process.peak_rss_bytes)} "
            f"| {gen} |"
        )
    return lines


def _verdicts(run: RunResult) -> list[str]:
    lines: list[str] = []
    for i in run.implementations:
        if i.status != "ok":
            lines.append(f"- **{i.name} was not measured** ({i.status}): {i.error}")
            lines += [f"    - {p}" for p in i.verify_problems[:10]]
            if i.stderr_tail:
                lines += [
                    "",
                    "  ```",
                    *[f"  {s}" for s in i.stderr_tail.splitlines()[-15:]],
                    "  ```",
                ]
        elif i.load is not None:
            if i.load.generator_saturated:
                lines.append(
                    f"- **{i.name}: the load generator was the limit** (it used "
                    f"{i.load.generator_cpu_percent:.0f}% of a core): these figures are the "
                    "generator's, not the system's."
                )
            if i.load.target_rps and i.load.throughput_rps < 0.95 * i.load.target_rps:
                lines.append(
                    f"- {i.name} served {i.load.throughput_rps:,.0f} req/s of the "
                    f"{i.load.target_rps:,.0f} offered: closed-loop users slowed down with it."
                )
            if i.load.errors:
                kinds = ", ".join(f"{k}: {n}" for k, n in sorted(i.load.error_kinds.items()))
                lines.append(f"- {i.name}: {i.load.errors} errors ({kinds}).")
    if run.environment.cpusets.shared:
        lines.append("- The system and the load generator shared CPUs: figures include contention.")
    return lines or ["- Every implementation passed its test vectors and was measured."]


def _server_metrics(impls: list[ImplementationResult]) -> list[str]:
    measured = [i for i in impls if i.server_metrics]
    keys = sorted({k for i in measured for k in i.server_metrics if "_bucket" not in k})
    if not keys:
        return []
    lines = [
        "## Server-side metrics (during the measured window)",
        "",
        "| metric | " + " | ".join(i.name for i in measured) + " |",
        "|---|" + "---|" * len(measured),
    ]
    for key in keys:
        cells = [
            f"{i.server_metrics[key]:,.6g}" if key in i.server_metrics else "—" for i in measured
        ]
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_markdown(run: RunResult, spectrum_png: str | None) -> str:
    env, scenario = run.environment, run.scenario
    cpus = env.cpusets
    ok = [i for i in run.implementations if i.load is not None]
    window = f"{ok[0].load.duration_s:.0f} s" if ok and ok[0].load else "—"
    lines = [
        f"# {scenario.pattern} — {run.run_id}",
        "",
        f"Profile `{scenario.profile}`: {_offered(run)}, measured for {window} after "
        f"{scenario.params['warmup_s']} s of warm-up. Latency is measured by the load generator "
        "from each request's actual send time into an HDR histogram.",
        "",
        "## Verdicts",
        "",
        *_verdicts(run),
        "",
        "## Results",
        "",
        *_results_table(run.implementations),
        "",
        "CPU % is the implementation's process tree, in % of one core; peak RSS is the summed "
        "resident memory of that tree. ⚠ marks a load generator at ≥ 90% of a core.",
        "",
    ]
    if spectrum_png:
        lines += [
            "## Latency by percentile",
            "",
            f"![latency by percentile]({spectrum_png})",
            "",
            "The x axis stretches the tail (90%, 99%, 99.9% …) as HdrHistogram plots do; a curve "
            "that turns up early means a heavy tail.",
            "",
        ]
    lines += _server_metrics(run.implementations)
    params = ", ".join(f"`{k}={v}`" for k, v in sorted(scenario.params.items()))
    libs = ", ".join(f"{k} {v}" for k, v in sorted(env.libraries.items()))
    lines += [
        "## Scenario",
        "",
        f"Engine `{scenario.engine}` ({scenario.load_model}), locustfile `{scenario.locustfile}`.",
        "",
        f"Parameters: {params}.",
        "",
        "## Environment",
        "",
        f"- git `{env.git_sha or 'unknown'}`" + (" (uncommitted changes)" if env.git_dirty else ""),
        f"- {env.cpu_model}, {env.cpu_count} CPUs available; system on CPUs {cpus.system}, "
        f"load generator on {cpus.loadgen}, support processes on {cpus.support}",
        f"- Python {env.python}, {env.go or 'Go not found'}, {env.platform}",
        f"- {libs}",
        "",
    ]
    return "\n".join(lines)


def render(run: RunResult, run_dir: Path) -> tuple[Path, Path]:
    """Write report.md, report.html and the plots into run_dir; return the two report paths."""
    has_plot = latency_spectrum(run, run_dir / SPECTRUM_PNG)
    text = render_markdown(run, SPECTRUM_PNG if has_plot else None)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_atomic(md_path, text)
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    write_atomic(html_path, _HTML.format(title=f"{run.scenario.pattern} — {run.run_id}", body=body))
    return md_path, html_path
