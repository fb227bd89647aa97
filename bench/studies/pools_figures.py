"""The pool study's figures: definitions, tables and plots, from the stored results alone.

Definitions used throughout (and in the report's text):

- **efficiency** at N workers = tasks/s at N / (N × tasks/s of the same pool at 1 worker), the
  usual scaling efficiency: 1.0 is perfect, 1/N is no gain at all;
- **speedup over inline** = tasks/s of a pool / tasks/s of the same work run inline on one
  worker (the implementation's `baseline` at one worker; without one, its own one-worker figure,
  as for a Go pool, which costs next to nothing): below 1.0 the pool loses to doing nothing
  clever;
- **per-task overhead** of a pool = 1 / (its tasks/s at 1 worker) − 1 / (inline tasks/s): what a
  task costs on a worker beyond the kernel itself (pickling, the pipe, the hand-off).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.studies.pools_data import Measurement, PoolResults, roles_in_order
from bench.studies.pools_plan import SPIN, Variant

SCALING_PNG = "pool_scaling.png"
CROSSOVER_PNG = "pool_crossover.png"

Key = tuple[str, str, int, float, int]  # implementation, kernel, size, task_ms, workers


def index(r: PoolResults) -> dict[Key, Measurement]:
    return {(m.implementation, m.kernel, m.size, m.task_ms, m.workers): m for m in r.measurements}


def implementations(r: PoolResults) -> list[str]:
    return roles_in_order(r, list(dict.fromkeys(m.implementation for m in r.measurements)))


def workers(r: PoolResults) -> list[int]:
    return sorted({m.workers for m in r.measurements})


def scaling_variants(r: PoolResults) -> list[Variant]:
    found = {m.variant for m in r.measurements if m.task_ms == r.scaling_ms}
    return sorted(found, key=lambda v: (v.kernel != "spin", -v.size))


def named(r: PoolResults, pool: str) -> list[str]:
    """Implementations measured whose pool is `pool` (inline, threads, processes, goroutines)."""
    roles = {role.name: role for role in r.roles}
    return [n for n in implementations(r) if n in roles and roles[n].pool == pool]


def baseline(r: PoolResults, impl: str) -> str:
    role = r.role(impl)
    return role.baseline if role is not None and role.baseline else impl


def _tput(idx: dict[Key, Measurement], key: Key) -> float | None:
    m = idx.get(key)
    return m.throughput.median if m is not None else None


def _ratio(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / (scale * b)


def efficiency(r: PoolResults, impl: str, variant: Variant, task_ms: float) -> float | None:
    """tasks/s at the most workers / (that many × tasks/s at one), for one pool and task."""
    idx, most = index(r), max(workers(r))
    full = _tput(idx, (impl, variant.kernel, variant.size, task_ms, most))
    one = _tput(idx, (impl, variant.kernel, variant.size, task_ms, 1))
    return _ratio(full, one, most)


def speedup_over_inline(
    r: PoolResults, impl: str, variant: Variant, task_ms: float, n: int
) -> float | None:
    idx = index(r)
    inline = _tput(idx, (baseline(r, impl), variant.kernel, variant.size, task_ms, 1))
    return _ratio(_tput(idx, (impl, variant.kernel, variant.size, task_ms, n)), inline)


def overhead_us(r: PoolResults, impl: str, task_ms: float) -> float | None:
    """Per-task cost of a pool beyond the kernel, from its 1-worker and the inline figures."""
    idx = index(r)
    one = _tput(idx, (impl, "spin", 0, task_ms, 1))
    inline = _tput(idx, (baseline(r, impl), "spin", 0, task_ms, 1))
    if not one or not inline:
        return None
    return 1e6 * (1 / one - 1 / inline)


def crossing(points: Sequence[tuple[float, float | None]], level: float) -> float | None:
    """The task size where a rising curve first reaches `level`, interpolated on log axes.

    `points` are (task_ms, value) in increasing task size; None when it never gets there; the
    smallest size when it is there from the start.
    """
    known = [(x, y) for x, y in points if y is not None]
    for i, (x, y) in enumerate(known):
        if y >= level:
            if i == 0:
                return x
            x0, y0 = known[i - 1]
            if y == y0:
                return x
            t = (level - y0) / (y - y0)
            return math.exp(math.log(x0) + t * (math.log(x) - math.log(x0)))
    return None


def off_size(r: PoolResults) -> list[Measurement]:
    """Configurations whose measured task missed the asked size by more than the tolerance."""
    return [
        m
        for m in r.measurements
        if m.measured_task_ms is not None and abs(m.measured_task_ms / m.task_ms - 1) > r.tolerance
    ]


# ---- cells and tables -----------------------------------------------------------------------


def rate(m: Measurement | None) -> str:
    if m is None:
        return "—"
    e = m.throughput
    digits = 0 if e.median >= 100 else 1
    if e.n < 2 or e.low == e.high:
        return f"{e.median:,.{digits}f}"
    return f"{e.median:,.{digits}f} ({e.low:,.{digits}f} to {e.high:,.{digits}f})"


def r2(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def task(ms: float) -> str:
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def _measured(found: Sequence[Measurement]) -> str:
    values = sorted(m.measured_task_ms for m in found if m.measured_task_ms is not None)
    if not values:
        return "—"
    low, high = values[0], values[-1]
    return f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g} to {high:.3g}"


def _overhead_cell(r: PoolResults, impl: str, ms: float) -> str:
    over = overhead_us(r, impl, ms)
    if over is None:
        return "—"
    if over < 0.05 * ms * 1000:  # under 5% of the task (or negative): the batches' spread
        return "within noise"
    return f"{over:,.0f}"


def scaling_table(r: PoolResults) -> list[str]:
    idx, counts, most = index(r), workers(r), max(workers(r))
    head = ["kernel", "implementation"]
    head += [f"tasks/s ×{w}" for w in counts]
    head += [f"efficiency ×{most}", f"speedup over inline ×{most}", "measured task ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in scaling_variants(r):
        for impl in implementations(r):
            found = [idx.get((impl, variant.kernel, variant.size, r.scaling_ms, w)) for w in counts]
            if all(m is None for m in found):
                continue
            eff = efficiency(r, impl, variant, r.scaling_ms)
            speed = speedup_over_inline(r, impl, variant, r.scaling_ms, most)
            present = [m for m in found if m is not None]
            row = [variant.label, impl, *map(rate, found), r2(eff), r2(speed), _measured(present)]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def crossover_table(r: PoolResults) -> list[str]:
    idx, most = index(r), max(workers(r))
    inline, impls = named(r, "inline"), implementations(r)
    pools = [i for i in impls if i not in inline]
    processes, goroutines = named(r, "processes")[:1], named(r, "goroutines")
    head = ["task", *(f"{i} ×1" for i in inline), *(f"{i} ×{most}" for i in pools)]
    head += [f"{p}: speedup over inline" for p in processes]
    head += [f"{p}: overhead µs/task" for p in processes]
    head += [f"{g}: efficiency" for g in goroutines]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ms in r.task_ms:
        row = [task(ms), *(rate(idx.get((i, "spin", 0, ms, 1))) for i in inline)]
        row += [rate(idx.get((i, "spin", 0, ms, most))) for i in pools]
        row += [r2(speedup_over_inline(r, p, SPIN, ms, most)) for p in processes]
        row += [_overhead_cell(r, p, ms) for p in processes]
        row += [r2(efficiency(r, g, SPIN, ms)) for g in goroutines]
        lines.append("| " + " | ".join(row) + " |")
    return lines


# ---- plots ----------------------------------------------------------------------------------


def _colors(impls: Sequence[str]) -> dict[str, str]:
    from bench.report.agg import plt

    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: palette[i % len(palette)] for i, name in enumerate(impls)}


def scaling_plot(r: PoolResults, path: Path) -> bool:
    found_variants, counts = scaling_variants(r), workers(r)
    if not found_variants or len(counts) < 2:
        return False
    idx, impls = index(r), implementations(r)
    colors = _colors(impls)
    from bench.report.agg import plt

    fig, axes = plt.subplots(1, len(found_variants), figsize=(4.6 * len(found_variants), 4.2),
                             squeeze=False)  # fmt: skip
    for ax, variant in zip(axes[0], found_variants, strict=True):
        for impl in impls:
            found = [
                (w, m)
                for w in counts
                if (m := idx.get((impl, variant.kernel, variant.size, r.scaling_ms, w)))
            ]
            if not found:
                continue
            xs = [w for w, _ in found]
            ys = [m.throughput.median for _, m in found]
            err = [
                [m.throughput.median - m.throughput.low for _, m in found],
                [m.throughput.high - m.throughput.median for _, m in found],
            ]
            if len(found) == 1:  # inline: one worker by definition, a reference level
                ax.axhline(ys[0], color=colors[impl], linestyle=":", label=f"{impl} (inline)")
                continue
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=colors[impl], label=impl)
            if found[0][0] == 1:
                ax.plot(counts, [ys[0] * w for w in counts], color=colors[impl],
                        linestyle="--", alpha=0.4)  # fmt: skip
        ax.set_title(f"{variant.label}, {r.scaling_ms:g} ms tasks")
        ax.set_xlabel("workers")
        ax.set_xticks(counts)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("tasks/s (median, 95% CI); dashed: ideal")
    axes[0][-1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def crossover_plot(r: PoolResults, path: Path) -> bool:
    if len(r.task_ms) < 2:
        return False
    most = max(workers(r))
    inline = set(named(r, "inline"))
    impls = [i for i in implementations(r) if i not in inline]
    colors = _colors(implementations(r))
    from matplotlib.ticker import FuncFormatter

    from bench.report.agg import plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    drawn = False
    for impl in impls:
        pts = [(ms, speedup_over_inline(r, impl, SPIN, ms, most)) for ms in r.task_ms]
        known = [(x, y) for x, y in pts if y is not None]
        if known:
            ax.plot(*zip(*known, strict=True), marker="o", color=colors[impl],
                    label=f"{impl} ×{most}")  # fmt: skip
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.axhline(1.0, color="grey", linestyle=":", label="inline (1 worker, no pool)")
    ax.axhline(float(most), color="grey", linestyle="--", label=f"ideal ({most}×)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("task size (ms of one worker, spin kernel)")
    ax.set_ylabel("speedup over inline")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("Where a pool's per-task overhead eats its gain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
