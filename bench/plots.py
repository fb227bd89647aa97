"""matplotlib figures for reports, written as PNG files next to the report."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, NullLocator

from bench.results import RunResult
from bench.stats import decode, spectrum, tail_axis

_TICKS = ((0.0, "0%"), (50.0, "50%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"),
          (99.99, "99.99%"), (99.999, "99.999%"))  # fmt: skip


def latency_spectrum(run: RunResult, path: Path) -> bool:
    """Latency by percentile, one line per measured implementation, on a log tail axis.

    Returns False (and writes nothing) when no implementation was measured.
    """
    measured = [i for i in run.implementations if i.load is not None and i.load.requests > 0]
    if not measured:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    top = 1.0
    for impl in measured:
        assert impl.load is not None
        points = spectrum(decode(impl.load.histogram))
        xs = [tail_axis(p) for p, _ in points]
        ys = [v for _, v in points]
        top = max(top, xs[-1])
        label = f"{impl.name} (p99 {impl.load.latency_ms.p99:.1f} ms)"
        if impl.load.generator_saturated:
            label += " — generator-bound"
        ax.plot(xs, ys, drawstyle="steps-post", linewidth=1.6, label=label)
    ax.set_xscale("log")
    ticks = [(tail_axis(p), text) for p, text in _TICKS if tail_axis(p) <= top * 1.01]
    ax.xaxis.set_major_locator(FixedLocator([t for t, _ in ticks]))
    ax.set_xticklabels([text for _, text in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1.0, max(top, 10.0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{run.scenario.pattern}: latency by percentile ({run.scenario.load_model})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
