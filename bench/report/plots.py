"""matplotlib figures for reports, written as PNG files next to the report (matplotlib is imported
by the functions that draw: `bench.report.agg`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram

from bench.models import LoadPoint, RunResult
from bench.stats.percentiles import decode, new_histogram, spectrum, tail_axis
from bench.stats.slo import Slo

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: When the slowest line's maximum is this many times the fastest median, latency goes on a log
#: axis.
LOG_Y_SPAN = 50.0

_TICKS = ((0.0, "0%"), (50.0, "50%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"),
          (99.99, "99.99%"), (99.999, "99.999%"))  # fmt: skip


def merged(point: LoadPoint, uncorrected: bool = False) -> HdrHistogram:
    """One histogram over the point's valid trials (all trials when none is valid)."""
    trials = [t for t in point.trials if t.valid] or point.trials
    total = new_histogram()
    for trial in trials:
        encoded = trial.load.uncorrected_histogram if uncorrected else trial.load.histogram
        if encoded:
            total.add(decode(encoded))
    return total


def _tail_axis(ax: Axes, top: float) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log")
    ticks = [(tail_axis(p), text) for p, text in _TICKS if tail_axis(p) <= top * 1.01]
    ax.xaxis.set_major_locator(FixedLocator([t for t, _ in ticks]))
    ax.set_xticklabels([text for _, text in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1.0, max(top, 10.0))


def latency_spectrum(run: RunResult, rate: float | None, path: Path) -> bool:
    """Latency by percentile at one target rate, one colour per implementation: corrected
    (solid) and, open-loop, uncorrected (dashed). False (nothing written) when nothing to draw."""
    from bench.report.agg import plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    top, drawn = 1.0, False
    medians: list[float] = []
    highest = 0.0
    for impl in run.implementations:
        point = next((p for p in impl.points if p.target_rps == rate), None)
        if point is None:
            continue
        for uncorrected in (False, True):
            points = spectrum(merged(point, uncorrected))
            if not points:
                continue
            xs = [tail_axis(p) for p, _ in points]
            top = max(top, xs[-1])
            medians.append(next((v for p, v in points if p >= 50.0), points[-1][1]))
            highest = max(highest, points[-1][1])
            label = impl.name + (" (uncorrected)" if uncorrected else "")
            if not point.valid:
                label += " — generator-limited"
            color = None if not uncorrected else ax.lines[-1].get_color()
            ax.plot(xs, [v for _, v in points], drawstyle="steps-post", linewidth=1.6,
                    linestyle="--" if uncorrected else "-", color=color, label=label)  # fmt: skip
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    _tail_axis(ax, top)
    if highest > LOG_Y_SPAN * max(min(medians), 0.01):
        ax.set_yscale("log")  # lines orders of magnitude apart: keep the fast one readable
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    at = f" at {rate:g} req/s" if rate is not None else ""
    ax.set_title(f"{run.scenario.pattern}: latency by percentile{at} ({run.scenario.load_model})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def throughput_latency(run: RunResult, path: Path) -> bool:
    """Latency (p99 solid with its 95% interval, p50 dotted) against the offered load, and
    below it, on the same x, the throughput achieved. Offered load is what the generator was
    asked for, so past overload the curves go on to the right instead of folding back as they
    would against the achieved throughput, which falls. Invalid points are hollow, each knee a
    star. False when no implementation has two offered rates."""
    measured = [
        (impl, usable)
        for impl in run.implementations
        if len(usable := [p for p in impl.points if p.target_rps and "p99" in p.summary]) >= 2
    ]
    if not measured:
        return False
    from bench.report.agg import plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), dpi=110, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})  # fmt: skip
    lowest, highest = float("inf"), 0.0
    for impl, usable in measured:
        xs = [p.target_rps or 0.0 for p in usable]
        lowest, highest = min(lowest, *xs), max(highest, *xs)
        p99 = [p.summary["p99"] for p in usable]
        line = top.errorbar(
            xs, [e.median for e in p99],
            yerr=[[e.median - e.low for e in p99], [e.high - e.median for e in p99]],
            marker="o", capsize=3, label=f"{impl.name} p99",
        )  # fmt: skip
        color = line.lines[0].get_color()
        top.plot(xs, [p.summary["p50"].median for p in usable], linestyle=":", color=color,
                 label=f"{impl.name} p50")  # fmt: skip
        done = [p.summary.get("throughput_rps") for p in usable]
        kept = [(x, e) for x, e in zip(xs, done, strict=True) if e is not None]
        if kept:
            bottom.errorbar([x for x, _ in kept], [e.median for _, e in kept],
                            yerr=[[e.median - e.low for _, e in kept],
                                  [e.high - e.median for _, e in kept]],
                            marker="o", capsize=3, color=color, label=impl.name)  # fmt: skip
        for p, x, e in zip(usable, xs, p99, strict=True):
            if not p.valid:
                top.plot([x], [e.median], marker="o", markersize=11, markerfacecolor="none",
                         color="red")  # fmt: skip
        knee = next((p for p in usable if p.target_rps == impl.knee_rps), None)
        if knee is not None and knee.target_rps is not None:
            top.plot([knee.target_rps], [knee.summary["p99"].median], marker="*", markersize=16,
                     color=color, linestyle="none",
                     label=f"{impl.name} knee ({impl.knee_rps:g} req/s)")  # fmt: skip
    slo_text = run.scenario.params.get("slo")
    if isinstance(slo_text, str) and slo_text:
        slo = Slo.parse(slo_text)
        top.axhline(slo.p99_ms, color="grey", linestyle="--", linewidth=1,
                    label=f"SLO: p{slo.percentile:g} ≤ {slo.p99_ms:g} ms")  # fmt: skip
    top.set_yscale("log")
    top.set_ylabel("latency (ms, corrected)")
    title = f"{run.scenario.pattern}: latency and throughput against offered load"
    if run.scenario.slo:
        title += f"\nSLO {run.scenario.slo}"
    top.set_title(title)
    top.grid(True, which="both", alpha=0.3)
    top.legend(fontsize="small")
    bottom.plot([lowest, highest], [lowest, highest], color="grey", linestyle="--", linewidth=1,
                label="achieved = offered")  # fmt: skip
    bottom.set_xlabel("offered load (target requests/s)")
    bottom.set_ylabel("throughput (successful/s)")
    bottom.set_ylim(bottom=0)
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
