"""The ceiling study's part of the report: the raw ceiling, the servers' efficiency against it,
what batching costs at low load and what it buys at the SLO, and a reading of the three.

Everything is computed from the stored study and run (bench/studies/ceiling_served.py); what a
figure needs and the run lacks (no trials, no metric, no baseline) is said in a sentence.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bench.models import RunResult, Study, first_error
from bench.report.sections import ReportSection
from bench.studies import ceiling_served as served
from bench.studies.ceiling_data import Ceiling, from_study
from bench.studies.ceiling_reading import cell, rate, raw_ratio_text, reading
from bench.studies.ceiling_spec import CeilingSpec

FIGURE_PNG = "ceiling.png"


def _facts(c: Ceiling) -> str:
    f = c.facts
    parts = [f"device {f.get('device', '?')}", f"torch {f.get('torch', '?')}",
             f"CUDA {f.get('cuda') or 'none'}", f"CPU threads {f.get('threads', '?')}"]  # fmt: skip
    return ", ".join(parts)


def ceiling_lines(
    c: Ceiling, spec: CeilingSpec, found: list[served.Efficiency], run_dir: Path
) -> list[str]:
    model = c.facts.get("model", "the model")
    lines = [
        "## Raw ceiling: the model alone, per batch size",
        "",
        f"One forward pass of {model} on a batch, the servers' own, timed in process with no "
        f"server, queue or network (torch.utils.benchmark's blocked_autorange, at least "
        f"{spec.min_run_time_s:g} s per batch size after a warm-up), pinned to CPUs {c.cpus}: "
        f"{_facts(c)}. Samples/s is the median over the timed blocks with its 95% bootstrap "
        "interval." + (f" The script's output: `{c.file}`." if c.file else ""),
        "",
    ]
    if not c.points:
        return [*lines, "No raw ceiling was measured.", ""]
    if len(c.points) > 1 and plot(c, found, run_dir / FIGURE_PNG):
        lines += [f"![the raw ceiling per batch size, and what the servers served]({FIGURE_PNG})",
                  ""]  # fmt: skip
    first = c.points[0]
    head = ["batch", "samples/s (95% CI)", "ms per batch", f"× batch {first.batch}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in c.points:
        times = p.rate.median / first.rate.median
        row = [str(p.batch), cell(p.rate), f"{1000 * p.s_per_batch:#.3g}", f"{times:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def plot(c: Ceiling, found: list[served.Efficiency], path: Path) -> bool:
    """The ceiling against the batch size, and each served point at its mean batch."""
    from bench.report.agg import plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    xs = [p.batch for p in c.points]
    ys = [p.rate.median for p in c.points]
    err = [[p.rate.median - p.rate.low for p in c.points],
           [p.rate.high - p.rate.median for p in c.points]]  # fmt: skip
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color="black", label="raw ceiling")
    for i, name in enumerate(dict.fromkeys(e.implementation for e in found)):
        mine = [e for e in found if e.implementation == name]
        ax.scatter([e.mean_batch.median for e in mine], [e.served.median for e in mine],
                   marker="sxD^v"[i % 5], label=f"{name} (served)")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("samples per forward pass (batch size; served: the mean)")
    ax.set_ylabel("samples/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def efficiency_lines(
    c: Ceiling, spec: CeilingSpec, run: RunResult, found: list[served.Efficiency]
) -> list[str]:
    lines = ["## Served efficiency: the servers against the ceiling", ""]
    if not c.points:
        return [*lines, "Without a raw ceiling there is nothing to set the servers against.", ""]
    if not found:
        return [*lines, f"No valid trial of the run has the servers' `{spec.batch_metric}` "
                "histogram: served samples and batches are unknown.", ""]  # fmt: skip
    lines += [
        f"Per trial, from the servers' `{spec.batch_metric}` (one observation per forward pass, "
        "valued its samples) over the measured window: served samples/s is the samples computed "
        "÷ the window's duration, the mean batch is samples ÷ forward passes, and efficiency is "
        "served ÷ the ceiling at that mean batch (log-linear between the batch sizes measured, "
        "clamped to the ends); each the median over valid trials with its 95% interval. Below "
        "saturation, efficiency only says how idle the server is: it serves what it is offered, "
        "and the rest of its ceiling waits.",
        "",
    ]
    lines += _devices(c, spec, run)
    head = ["implementation", "target req/s", "served samples/s", "mean batch",
            "ceiling there, samples/s", "efficiency (95% CI)", "trials"]  # fmt: skip
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in found:
        target = f"{e.rate:,.0f}" if e.rate is not None else "closed-loop"
        row = [e.implementation, target, cell(e.served), cell(e.mean_batch, "plain"),
               rate(e.ceiling), cell(e.efficiency, "pct"), str(e.served.n)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _devices(c: Ceiling, spec: CeilingSpec, run: RunResult) -> list[str]:
    if spec.info_metric is None:
        return []
    labels = served.info_labels(run, spec.info_metric)
    if not labels:
        return [f"No server reported `{spec.info_metric}`: which device they used is unknown.", ""]
    said = [f"{name}: {', '.join(f'{k} {v}' for k, v in sorted(found.items()))}"
            for name, found in labels.items()]  # fmt: skip
    text = "The servers said: " + "; ".join(said) + "."
    mine = str(c.facts.get("device", ""))
    other = [n for n, found in labels.items() if "device" in found and found["device"] != mine]
    if other and mine:
        text += (f" **{', '.join(other)} ran on another device than the ceiling's ({mine}): "
                 "its efficiency compares unlike things.**")  # fmt: skip
    return [text, ""]


def penalty_lines(spec: CeilingSpec, run: RunResult) -> list[str]:
    lines = ["## Low-load penalty of batching", ""]
    try:
        base = run.implementation(spec.baseline)
    except KeyError:
        return [*lines, f"The run has no `{spec.baseline}`, the baseline without batching.", ""]
    found = [served.penalty(i, base, spec.latency_metric) for i in run.implementations
             if i.name != spec.baseline]  # fmt: skip
    if not any(found):
        return [*lines, f"No implementation shares a rate with valid trials with "
                f"`{spec.baseline}`.", ""]  # fmt: skip
    lines += [
        f"At the lowest rate each measured alongside `{spec.baseline}` (no batching), the "
        "median latency (p50, from each request's intended send time) of each trial, less the "
        f"baseline's: paired by trial index where both have valid trials of it (trials "
        "interleave, so trial i of each ran at about the same time), the median of the "
        "differences with its bootstrap interval; else the difference of the medians, its "
        "interval from the two intervals' extremes. A dynamic batcher waits up to "
        f"{spec.max_queue_delay_ms:g} ms for a batch to fill; at low load it mostly waits.",
        "",
    ]
    head = ["implementation", "req/s", "p50 ms", f"{spec.baseline} p50 ms",
            "difference ms (95% CI)", "paired",
            f"within {spec.max_queue_delay_ms:g} ms"]  # fmt: skip
    means = any(p is not None and p.server_mean_ms for p in found)
    head += ["server mean ms, both"] if means else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in found:
        if p is None:
            continue
        at = f"{p.rate:,.0f}" if p.rate is not None else "closed-loop"
        row = [p.implementation, at, f"{p.p50.median:.2f}",
               f"{p.baseline_p50.median:.2f}", cell(p.difference, "ms"),
               "yes" if p.paired else "no", _within(p, spec.max_queue_delay_ms)]  # fmt: skip
        if means:
            m = p.server_mean_ms
            row.append(f"{m[0]:.2f} / {m[1]:.2f}" if m else "—")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _within(p: served.Penalty, bound: float) -> str:
    if p.difference.high <= bound:
        return "yes"
    return "at the median; its interval reaches past" if p.difference.median <= bound else "no"


def slo_lines(c: Ceiling, spec: CeilingSpec, run: RunResult) -> list[str]:
    lines = ["## Throughput at the SLO", ""]
    if run.scenario.slo is None:
        return [*lines, "The run had no SLO: no rate meets or misses one.", ""]
    lines += [
        f"Each implementation's highest rate meeting the SLO ({run.scenario.slo}: the search's "
        f"best rate where one ran, else the sweep's knee) × {spec.samples_per_request} samples "
        f"per request, against `{spec.baseline}`'s. ≥: the implementation met the SLO at the "
        "highest rate tried, so its figure, and the ratio, is a lower bound.",
        "",
        "| implementation | req/s at the SLO | samples/s | × baseline |",
        "|---|---|---|---|",
    ]
    names = [i.name for i in run.implementations]
    rows = {i.name: served.at_slo(i, spec.samples_per_request) for i in run.implementations}
    base = rows.get(spec.baseline)
    for name in names:
        r = rows[name]
        times = "—"
        if base is not None and base.samples_s and r.samples_s:
            times = served.ratio_bound(r, base)(f"{r.samples_s / base.samples_s:.2f}")
        mark = "≥ " if r.lower_bound else ""
        row = [name, f"{mark}{r.rate:,.0f}" if r.rate is not None else "none met it",
               f"{mark}{rate(r.samples_s)}" if r.samples_s else "—", times]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if base is None:
        lines += [f"The run has no `{spec.baseline}`, the baseline without batching.", ""]
    if len(c.points) > 1:
        lines += [f"The raw ratio, {raw_ratio_text(c)}, is what batching buys the model alone "
                  "on this device; a served ratio above it means the baseline fell short of its "
                  "own ceiling (per-request overhead, or latency rather than throughput limited "
                  "it).", ""]  # fmt: skip
    return lines


def section(study: Study, run: RunResult, run_dir: Path) -> ReportSection:
    c = from_study(study)
    try:
        spec = CeilingSpec.model_validate(study.spec)
    except ValidationError as e:
        return ReportSection(lines=["## Raw ceiling", "", f"The study's table as stored cannot "
                                    f"be read ({first_error(e)}).", ""])  # fmt: skip
    found = served.efficiencies(c, run, spec.batch_metric) if c.points else []
    lines = ceiling_lines(c, spec, found, run_dir)
    if c.errors:
        lines += ["What could not be measured:", "", *(f"- {e}" for e in c.errors), ""]
    lines += efficiency_lines(c, spec, run, found)
    lines += penalty_lines(spec, run) + slo_lines(c, spec, run)
    return ReportSection(reading=reading(c, spec, run, found), lines=lines)
