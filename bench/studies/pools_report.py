"""The report's pool sections: a written reading, scaling with workers, the overhead crossover.

Everything here is computed from the run's in-process study (bench/inprocess.py) and its service
points; nothing is a fixed claim. Definitions used throughout:

- **efficiency** at N workers = tasks/s at N / (N × tasks/s of the same pool at 1 worker), the
  usual scaling efficiency: 1.0 is perfect, 1/N is no gain at all;
- **speedup over inline** = tasks/s of a pool / tasks/s of the same work run inline on one
  worker (`python-sync` for the Python pools, the 1-worker pool for Go, whose pool costs next to
  nothing): below 1.0 the pool loses to doing nothing clever;
- **per-task overhead** of a pool = 1 / (its tasks/s at 1 worker) − 1 / (inline tasks/s): what a
  task costs on a worker beyond the kernel itself (pickling, the pipe, the hand-off).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from bench.models import InProcessMeasurement, InProcessStudy, RunResult
from bench.studies.pools import FREE_THREADED_IMPL, Variant

SCALING_PNG = "pool_scaling.png"
CROSSOVER_PNG = "pool_crossover.png"

INLINE = "python-sync"
#: Display order; anything else follows.
ORDER = ("python-sync", "python-threads", FREE_THREADED_IMPL, "python-processes", "go")
#: Efficiency from which a pool is said to pay off.
PAYS_OFF = 0.9
#: A p99 beyond this, at a point where the service refused work, waited outside its queue.
BACKLOG_MS = 1000.0

Key = tuple[str, str, int, float, int]  # implementation, kernel, size, task_ms, workers


def _index(study: InProcessStudy) -> dict[Key, InProcessMeasurement]:
    return {
        (m.implementation, m.kernel, m.size, m.task_ms, m.workers): m for m in study.measurements
    }


def _impls(study: InProcessStudy) -> list[str]:
    names = {m.implementation for m in study.measurements}
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def _workers(study: InProcessStudy) -> list[int]:
    return sorted({m.workers for m in study.measurements})


def _variants(study: InProcessStudy) -> list[Variant]:
    found = {
        Variant(m.kernel, m.size) for m in study.measurements if m.task_ms == study.scaling_task_ms
    }
    return sorted(found, key=lambda v: (v.kernel != "spin", -v.size))


def _tput(idx: dict[Key, InProcessMeasurement], key: Key) -> float | None:
    m = idx.get(key)
    return m.throughput.median if m is not None else None


def _rate(m: InProcessMeasurement | None) -> str:
    if m is None:
        return "—"
    e = m.throughput
    digits = 0 if e.median >= 100 else 1
    if e.n < 2 or e.low == e.high:
        return f"{e.median:,.{digits}f}"
    return f"{e.median:,.{digits}f} ({e.low:,.{digits}f} to {e.high:,.{digits}f})"


def _ratio(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / (scale * b)


def _r2(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _task(ms: float) -> str:
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def _overhead_cell(study: InProcessStudy, ms: float) -> str:
    over = overhead_us(study, "python-processes", ms)
    if over is None:
        return "—"
    if over < 0.05 * ms * 1000:  # under 5% of the task (or negative): the batches' spread
        return "within noise"
    return f"{over:,.0f}"


def efficiency(study: InProcessStudy, impl: str, variant: Variant, task_ms: float) -> float | None:
    """tasks/s at the most workers / (that many × tasks/s at one), for one pool and task."""
    idx, most = _index(study), max(_workers(study))
    full = _tput(idx, (impl, variant.kernel, variant.size, task_ms, most))
    one = _tput(idx, (impl, variant.kernel, variant.size, task_ms, 1))
    return _ratio(full, one, most)


def speedup_over_inline(
    study: InProcessStudy, impl: str, variant: Variant, task_ms: float, workers: int
) -> float | None:
    idx = _index(study)
    base = INLINE if impl.startswith("python") else impl
    inline = _tput(idx, (base, variant.kernel, variant.size, task_ms, 1))
    return _ratio(_tput(idx, (impl, variant.kernel, variant.size, task_ms, workers)), inline)


def overhead_us(study: InProcessStudy, impl: str, task_ms: float) -> float | None:
    """Per-task cost of a pool beyond the kernel, from its 1-worker and the inline figures."""
    idx = _index(study)
    one = _tput(idx, (impl, "spin", 0, task_ms, 1))
    inline = _tput(idx, (INLINE, "spin", 0, task_ms, 1))
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


# ---- tables ---------------------------------------------------------------------------------


def scaling_table(study: InProcessStudy) -> list[str]:
    idx, workers, most = _index(study), _workers(study), max(_workers(study))
    head = ["kernel", "implementation"]
    head += [f"tasks/s ×{w}" for w in workers]
    head += [f"efficiency ×{most}", f"speedup over inline ×{most}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in _variants(study):
        for impl in _impls(study):
            cells = [
                _rate(idx.get((impl, variant.kernel, variant.size, study.scaling_task_ms, w)))
                for w in workers
            ]
            if all(c == "—" for c in cells):
                continue
            eff = efficiency(study, impl, variant, study.scaling_task_ms)
            speed = speedup_over_inline(study, impl, variant, study.scaling_task_ms, most)
            row = [variant.label, impl, *cells, _r2(eff), _r2(speed)]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def crossover_table(study: InProcessStudy) -> list[str]:
    idx, most = _index(study), max(_workers(study))
    spin = Variant("spin", 0)
    impls = _impls(study)
    head = ["task", f"{INLINE} ×1", *(f"{i} ×{most}" for i in impls if i != INLINE)]
    head += ["processes: speedup over inline", "processes: overhead µs/task", "go: efficiency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ms in study.task_ms:
        row = [_task(ms), _rate(idx.get((INLINE, "spin", 0, ms, 1)))]
        row += [_rate(idx.get((i, "spin", 0, ms, most))) for i in impls if i != INLINE]
        row.append(_r2(speedup_over_inline(study, "python-processes", spin, ms, most)))
        row.append(_overhead_cell(study, ms))
        row.append(_r2(efficiency(study, "go", spin, ms)))
        lines.append("| " + " | ".join(row) + " |")
    return lines


# ---- figures --------------------------------------------------------------------------------


def _colors(impls: Sequence[str]) -> dict[str, str]:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: palette[i % len(palette)] for i, name in enumerate(impls)}


def scaling_plot(study: InProcessStudy, path: Path) -> bool:
    variants, workers = _variants(study), _workers(study)
    if not variants or len(workers) < 2:
        return False
    idx, impls = _index(study), _impls(study)
    colors = _colors(impls)
    fig, axes = plt.subplots(1, len(variants), figsize=(4.6 * len(variants), 4.2), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        for impl in impls:
            found = [
                (w, m)
                for w in workers
                if (m := idx.get((impl, variant.kernel, variant.size, study.scaling_task_ms, w)))
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
                ax.plot(workers, [ys[0] * w for w in workers], color=colors[impl],
                        linestyle="--", alpha=0.4)  # fmt: skip
        ax.set_title(f"{variant.label}, {study.scaling_task_ms:g} ms tasks")
        ax.set_xlabel("workers")
        ax.set_xticks(workers)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("tasks/s (median, 95% CI); dashed: ideal")
    axes[0][-1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def crossover_plot(study: InProcessStudy, path: Path) -> bool:
    if len(study.task_ms) < 2:
        return False
    most = max(_workers(study))
    spin = Variant("spin", 0)
    impls = [i for i in _impls(study) if i != INLINE]
    colors = _colors(_impls(study))
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    drawn = False
    for impl in impls:
        pts = [(ms, speedup_over_inline(study, impl, spin, ms, most)) for ms in study.task_ms]
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


# ---- the reading ----------------------------------------------------------------------------


def reading(run: RunResult) -> list[str]:
    """Bullets, each a finding with its figures, for the top of the report."""
    study = run.inprocess
    lines: list[str] = []
    if study is None:
        return lines
    if study.measurements:
        lines += _scaling_reading(study)
        lines += _crossover_reading(study)
        lines += _language_reading(run, study)
        ft = study.free_threaded
        if not ft.available:
            lines.append(f"- Free-threaded CPython: {ft.note}.")
    lines += _service_reading(run)
    return lines


def _scaling_reading(study: InProcessStudy) -> list[str]:
    most, ms = max(_workers(study)), study.scaling_task_ms
    if most < 2:
        return [f"- Only one CPU was available: no scaling figures ({ms:g} ms tasks)."]
    out: list[str] = []
    spin = Variant("spin", 0)
    pools = [
        (name, e)
        for name in ("python-processes", "go")
        if (e := efficiency(study, name, spin, ms)) is not None
    ]
    if pools:
        verdicts = [f"{name} {e:.2f} ({_scales(e)})" for name, e in pools]
        out.append(
            f"- **At {ms:g} ms tasks, efficiency at {most} workers** (1.0 is perfect, "
            f"{1 / most:.2f} no gain): {'; '.join(verdicts)}."
        )
    parts = []
    gil: dict[bool, list[float]] = {True: [], False: []}  # releases the GIL → efficiencies
    for variant in _variants(study):
        e = efficiency(study, "python-threads", variant, ms)
        if e is None:
            continue
        speed = e * most
        releases = variant.kernel == "hash" and variant.size > 2047
        gil[releases].append(e)
        why = (
            "hashlib releases the GIL while it hashes a block over 2 KiB"
            if releases
            else "the GIL lets one thread run Python at a time"
            if variant.kernel == "spin"
            else "hashlib keeps the GIL for blocks this small, and the loop between calls is Python"
        )
        parts.append(f"{speed:.2f}× one thread on {variant.label} ({why})")
    if parts:
        held, released = gil[False], gil[True]
        lead = (
            "Threads scale only when the kernel releases the GIL"
            if held and released and max(held) < 0.75 <= min(released)
            else "Threads"
        )
        out.append(f"- **{lead}:** {most} threads give {'; '.join(parts)}.")
    ft_parts = []
    for variant in _variants(study):
        e = efficiency(study, FREE_THREADED_IMPL, variant, ms)
        if e is not None:
            ft_parts.append(f"{e * most:.2f}× on {variant.label}")
    if ft_parts:
        out.append(f"- On free-threaded CPython ({study.free_threaded.version}) {most} threads "
                   f"give {', '.join(ft_parts)}: no GIL to serialise them.")  # fmt: skip
    return out


def _scales(e: float) -> str:
    return "scales" if e >= PAYS_OFF else "scales in part" if e >= 0.6 else "hardly scales"


def _crossover_reading(study: InProcessStudy) -> list[str]:
    most = max(_workers(study))
    spin = Variant("spin", 0)
    if len(study.task_ms) < 2 or most < 2:
        return []
    speeds = [
        (ms, speedup_over_inline(study, "python-processes", spin, ms, most)) for ms in study.task_ms
    ]
    known = [(ms, s) for ms, s in speeds if s is not None]
    if not known:
        return []
    smallest, s_small = known[0]
    even = crossing(speeds, 1.0)
    pays = crossing(speeds, PAYS_OFF * most)
    over = overhead_us(study, "python-processes", smallest)
    lead = (
        "A process pool needs tasks large enough to hide its overhead"
        if s_small < PAYS_OFF * most
        else "A process pool pays from the smallest task measured"
    )
    text = (
        f"- **{lead}:** at {_task(smallest)} it runs {s_small:.2f}× the inline rate with {most} "
        "workers"
    )
    if over is not None and over > 0:
        text += (
            f"; each task costs about {over:,.0f} µs more on a worker process than inline "
            "(pickling the task and its result, the pipe, the executor's bookkeeping), which a "
            "short task cannot hide"
        )
    text += "."
    if even is not None and even > smallest:
        text += f" It breaks even near {_task(even)}."
    if pays is not None and pays > smallest:
        text += f" It reaches {PAYS_OFF:.0%} of the ideal {most}× from about {_task(pays)}."
    elif pays is None:
        text += f" It does not reach {PAYS_OFF:.0%} of the ideal {most}× at any size measured."
    out = [text]
    winners = []
    for ms in study.task_ms:
        options = {
            "python-sync": speedup_over_inline(study, INLINE, spin, ms, 1),
            "python-threads": speedup_over_inline(study, "python-threads", spin, ms, most),
            "python-processes": speedup_over_inline(study, "python-processes", spin, ms, most),
        }
        present = {k: v for k, v in options.items() if v is not None}
        if present:
            best = max(present, key=lambda k: present[k])
            winners.append(f"{_task(ms)}: {best} ({present[best]:.2f}×)")
    if winners:
        out.append("- **Fastest Python form by task size** (speedup over inline): "
                   + "; ".join(winners) + ".")  # fmt: skip
    return out


def _language_reading(run: RunResult, study: InProcessStudy) -> list[str]:
    py, go = study.ns_per_round.get("python/spin"), study.ns_per_round.get("go/spin")
    if not py or not go:
        return []
    text = (
        f"- **Go runs the same kernel about {py / go:,.0f} times faster** ({go:.2f} ns against "
        f"{py:.0f} ns a spin round), so the same work is a much smaller task in Go"
    )
    rounds = run.scenario.params.get("rounds")
    if run.scenario.params.get("kernel") == "spin" and isinstance(rounds, int) and rounds > 0:
        text += (
            f": the services' task of {rounds:,} rounds is {rounds * py / 1e6:.2f} ms of Python "
            f"and {rounds * go / 1e3:.1f} µs of Go, where HTTP handling, not the kernel, is the "
            "cost"
        )
    return [text + "."]


def _service_reading(run: RunResult) -> list[str]:
    measured = [i for i in run.implementations if i.status == "ok" and i.points]
    if not measured or run.scenario.load_model != "open-loop":
        return []
    rates = ", ".join(f"{r:,.0f}" for r in run.scenario.rates)
    if run.scenario.slo and any(len(i.points) >= 2 for i in measured):
        knees = "; ".join(
            f"{i.name} {i.knee_rps:,.0f} req/s" if i.knee_rps is not None else f"{i.name} none"
            for i in measured
        )
        text = (
            f"- **As services under open-loop load** ({rates} req/s, one task per request), the "
            f"highest rate meeting {run.scenario.slo}: {knees}."
        )
    else:
        return []
    refused: list[str] = []
    backlog: list[str] = []
    for impl in measured:
        top = impl.points[-1]
        errors, p99 = top.summary.get("error_rate"), top.summary.get("p99")
        if errors is None or p99 is None or errors.median <= 0.001:
            continue
        rate = f"{top.target_rps:,.0f}" if top.target_rps else "the top rate"
        refused.append(
            f"{impl.name} refused {100 * errors.median:.1f}% at {rate} req/s with p99 "
            f"{p99.median:,.0f} ms"
        )
        if p99.median > BACKLOG_MS:
            backlog.append(impl.name)
    if refused:
        text += (
            " Past capacity the bounded queue answers 503 with Retry-After instead of queueing "
            f"without bound: {'; '.join(refused)}."
        )
    if backlog:
        text += (
            f" A p99 of seconds beside refusals ({', '.join(backlog)}) means requests waited "
            "before the service read them, where no bound applies"
        )
        if any("threads" in name for name in backlog):
            text += (
                ": with threads, the workers hold the GIL the event loop needs to read and "
                "refuse requests (a thread waiting for the GIL may wait 5 ms, "
                "sys.getswitchinterval(), per hand-over)"
            )
        text += "."
    return [text]


# ---- the section ----------------------------------------------------------------------------


def render(run: RunResult, run_dir: Path) -> tuple[list[str], list[str]]:
    """The reading (for the top) and the pool sections (after the service results)."""
    study = run.inprocess
    top = reading(run)
    if study is None:
        return top, []
    most = max(_workers(study), default=1)
    lines = [
        "## Pools without a network",
        "",
        f"The same pools timed in process on batches of identical tasks (pyperf for Python, `go "
        f"test -bench` for Go), pinned to CPUs {study.cpus}. Task sizes are calibrated per "
        f"language: a {study.scaling_task_ms:g} ms task is {study.scaling_task_ms:g} ms of one "
        "worker's time in every implementation. Throughput is the median over every timed batch "
        "with its 95% bootstrap interval.",
        "",
        "### Throughput against workers",
        "",
    ]
    if scaling_plot(study, run_dir / SCALING_PNG):
        lines += [f"![throughput against workers]({SCALING_PNG})", ""]
    lines += [
        *scaling_table(study),
        "",
        f"Efficiency ×{most} = tasks/s at {most} workers / ({most} × tasks/s at 1 worker) of the "
        "same pool; speedup over inline = tasks/s / the same work run inline on one worker "
        "(python-sync for Python, the 1-worker pool for Go).",
        "",
        "### The overhead crossover by task size",
        "",
    ]
    if crossover_plot(study, run_dir / CROSSOVER_PNG):
        lines += [f"![speedup over inline by task size]({CROSSOVER_PNG})", ""]
    lines += [
        *crossover_table(study),
        "",
        "Overhead µs/task = 1 / (process pool tasks/s at 1 worker) − 1 / (inline tasks/s): what "
        "a task costs on a worker process beyond its kernel; where that is under 5% of the task "
        "it cannot be told from the spread of the batches.",
        "",
    ]
    ft = study.free_threaded
    lines.append(
        f"Free-threaded CPython: {'used, ' + (ft.interpreter or '') if ft.available else ft.note}."
    )
    lines.append("")
    if study.errors:
        lines += ["Configurations that could not be measured:", ""]
        lines += [f"- {e}" for e in study.errors]
        lines.append("")
    calib = ", ".join(f"{k} {v:,.2f} ns" for k, v in sorted(study.ns_per_round.items()))
    lines += [f"Calibration (per kernel round): {calib}.", ""]
    return top, lines
