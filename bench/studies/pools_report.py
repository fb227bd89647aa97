"""The pool study's part of the report: a written reading, scaling with workers, the crossover.

Everything here is computed from the stored study (bench/studies/pools_data.py) and the run's
service points; nothing is a fixed claim, and every name comes from the study: the report says
of an implementation what its `pool` (inline, threads, processes, goroutines) lets it say.
The figures' definitions are in bench/studies/pools_figures.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.models import RunResult, Study
from bench.report.sections import ReportSection
from bench.studies.pools_data import PoolResults, from_study
from bench.studies.pools_figures import (
    CROSSOVER_PNG,
    SCALING_PNG,
    crossing,
    crossover_plot,
    crossover_table,
    efficiency,
    implementations,
    named,
    off_size,
    overhead_us,
    scaling_plot,
    scaling_table,
    scaling_variants,
    speedup_over_inline,
    task,
    workers,
)
from bench.studies.pools_plan import SPIN

#: Efficiency from which a pool is said to pay off.
PAYS_OFF = 0.9
#: A p99 beyond this, at a point where the service refused work, waited outside its queue.
BACKLOG_MS = 1000.0


def _gil_held(r: PoolResults, pool: str) -> list[str]:
    """Implementations of a pool kind on an interpreter with the GIL."""
    return [n for n in named(r, pool) if not (role := r.role(n)) or not role.free_threaded]


def _free_threaded(r: PoolResults) -> list[str]:
    return [n for n in named(r, "threads") if (role := r.role(n)) and role.free_threaded]


def _language(name: str) -> str:
    return name[:1].upper() + name[1:]


# ---- the reading ----------------------------------------------------------------------------


def reading(r: PoolResults, run: RunResult) -> list[str]:
    """Bullets, each a finding with its figures, for the top of the report."""
    lines: list[str] = []
    if r.measurements:
        lines += _scaling_reading(r)
        lines += _crossover_reading(r)
        lines += _language_reading(r)
        ft = r.free_threaded
        if ft.asked and not ft.available:
            lines.append(f"- Free-threaded CPython: {ft.note}.")
    lines += _service_reading(r, run)
    return lines


def _scales(e: float) -> str:
    return "scales" if e >= PAYS_OFF else "scales in part" if e >= 0.6 else "hardly scales"


def _scaling_reading(r: PoolResults) -> list[str]:
    most, ms = max(workers(r)), r.scaling_ms
    if most < 2:
        return [f"- Only one CPU was available: no scaling figures ({ms:g} ms tasks)."]
    out: list[str] = []
    parallel = [
        n for n in implementations(r) if n in _gil_held(r, "processes") + named(r, "goroutines")
    ]
    pools = [(n, e) for n in parallel if (e := efficiency(r, n, SPIN, ms)) is not None]
    if pools:
        verdicts = [f"{name} {e:.2f} ({_scales(e)})" for name, e in pools]
        out.append(
            f"- **At {ms:g} ms tasks, efficiency at {most} workers** (1.0 is perfect, "
            f"{1 / most:.2f} no gain): {'; '.join(verdicts)}."
        )
    parts = []
    gil: dict[bool, list[float]] = {True: [], False: []}  # releases the GIL → efficiencies
    for threads in _gil_held(r, "threads")[:1]:
        for variant in scaling_variants(r):
            e = efficiency(r, threads, variant, ms)
            if e is None:
                continue
            releases = variant.kernel == "hash" and variant.size > 2047
            gil[releases].append(e)
            why = (
                "hashlib releases the GIL while it hashes a block over 2 KiB"
                if releases
                else "the GIL lets one thread run Python at a time"
                if variant.kernel == "spin"
                else "hashlib keeps the GIL for blocks this small, and the loop between calls is "
                "Python"
            )
            parts.append(f"{e * most:.2f}× one thread on {variant.label} ({why})")
    if parts:
        held, released = gil[False], gil[True]
        lead = (
            "Threads scale only when the kernel releases the GIL"
            if held and released and max(held) < 0.75 <= min(released)
            else "Threads"
        )
        out.append(f"- **{lead}:** {most} threads give {'; '.join(parts)}.")
    for ft in _free_threaded(r):
        ft_parts = [
            f"{e * most:.2f}× on {variant.label}"
            for variant in scaling_variants(r)
            if (e := efficiency(r, ft, variant, ms)) is not None
        ]
        if ft_parts:
            out.append(f"- On free-threaded CPython ({r.free_threaded.version}) {most} threads "
                       f"give {', '.join(ft_parts)}: no GIL to serialise them.")  # fmt: skip
    return out


def _crossover_reading(r: PoolResults) -> list[str]:
    most = max(workers(r))
    processes = _gil_held(r, "processes")[:1]
    if len(r.task_ms) < 2 or most < 2 or not processes:
        return []
    proc = processes[0]
    speeds = [(ms, speedup_over_inline(r, proc, SPIN, ms, most)) for ms in r.task_ms]
    known = [(ms, s) for ms, s in speeds if s is not None]
    if not known:
        return []
    smallest, s_small = known[0]
    even = crossing(speeds, 1.0)
    pays = crossing(speeds, PAYS_OFF * most)
    over = overhead_us(r, proc, smallest)
    lead = (
        "A process pool needs tasks large enough to hide its overhead"
        if s_small < PAYS_OFF * most
        else "A process pool pays from the smallest task measured"
    )
    text = (
        f"- **{lead}:** at {task(smallest)} it runs {s_small:.2f}× the inline rate with {most} "
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
        text += f" It breaks even near {task(even)}."
    if pays is not None and pays > smallest:
        text += f" It reaches {PAYS_OFF:.0%} of the ideal {most}× from about {task(pays)}."
    elif pays is None:
        text += f" It does not reach {PAYS_OFF:.0%} of the ideal {most}× at any size measured."
    out = [text]
    role = r.role(proc)
    language = role.language if role is not None else ""
    forms = [
        n for n in implementations(r)
        if (x := r.role(n)) is not None and x.language == language and not x.free_threaded
    ]  # fmt: skip
    winners = []
    for ms in r.task_ms:
        options = {
            n: speedup_over_inline(r, n, SPIN, ms, 1 if n in named(r, "inline") else most)
            for n in forms
        }
        present = {k: v for k, v in options.items() if v is not None}
        if present:
            best = max(present, key=lambda k: present[k])
            winners.append(f"{task(ms)}: {best} ({present[best]:.2f}×)")
    if winners:
        out.append(f"- **Fastest {_language(language)} form by task size** (speedup over "
                   "inline): " + "; ".join(winners) + ".")  # fmt: skip
    return out


def _language_reading(r: PoolResults) -> list[str]:
    spins = {
        role.language: ns
        for role in r.roles
        if not role.free_threaded and (ns := r.ns_per_round.get(f"{role.language}/spin"))
    }
    if len(spins) < 2:
        return []
    slow, fast = max(spins, key=lambda k: spins[k]), min(spins, key=lambda k: spins[k])
    slow_ns, fast_ns = spins[slow], spins[fast]
    text = (
        f"- **{_language(fast)} runs the same kernel about {slow_ns / fast_ns:,.0f} times "
        f"faster** ({fast_ns:.2f} ns against {slow_ns:.0f} ns a spin round), so the same work "
        f"is a much smaller task in {_language(fast)}"
    )
    service = r.service_task or {}
    rounds = service.get("rounds")
    if service.get("kernel") == "spin" and isinstance(rounds, int) and rounds > 0:
        text += (
            f": the services' task of {rounds:,} rounds is {rounds * slow_ns / 1e6:.2f} ms of "
            f"{_language(slow)} and {rounds * fast_ns / 1e3:.1f} µs of {_language(fast)}, where "
            "HTTP handling, not the kernel, is the cost"
        )
    return [text + "."]


def _service_reading(r: PoolResults, run: RunResult) -> list[str]:
    measured = [i for i in run.implementations if i.status == "ok" and i.points]
    if not measured or run.scenario.load_model != "open-loop":
        return []
    if not run.scenario.slo or not any(len(i.points) >= 2 for i in measured):
        return []
    rates = ", ".join(f"{x:,.0f}" for x in run.scenario.rates)
    knees = "; ".join(
        f"{i.name} {i.knee_rps:,.0f} req/s" if i.knee_rps is not None else f"{i.name} none"
        for i in measured
    )
    text = (
        f"- **As services under open-loop load** ({rates} req/s, one task per request), the "
        f"highest rate meeting {run.scenario.slo}: {knees}."
    )
    refused: list[str] = []
    backlog: list[str] = []
    for impl in measured:
        top = impl.points[-1]
        errors, p99 = top.summary.get("error_rate"), top.summary.get("p99")
        if errors is None or p99 is None or errors.median <= 0.001:
            continue
        at = f"{top.target_rps:,.0f}" if top.target_rps else "the top rate"
        refused.append(
            f"{impl.name} refused {100 * errors.median:.1f}% at {at} req/s with p99 "
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
        if set(backlog) & set(_gil_held(r, "threads")):
            text += (
                ": with threads, the workers hold the GIL the event loop needs to read and "
                "refuse requests (a thread waiting for the GIL may wait 5 ms, "
                "sys.getswitchinterval(), per hand-over)"
            )
        text += "."
    return [text]


# ---- the sections ---------------------------------------------------------------------------


def _tools(r: PoolResults) -> str:
    names = {"pyperf": "pyperf", "go-bench": "`go test -bench`"}
    by_language: dict[str, str] = {}
    for m in r.measurements:
        role = r.role(m.implementation)
        by_language.setdefault(role.language if role else m.implementation, m.source)
    return ", ".join(f"{names.get(s, s)} for {_language(lang)}" for lang, s in by_language.items())


def _baselines(r: PoolResults) -> str:
    groups: dict[str, list[str]] = {}
    own: list[str] = []
    for name in implementations(r):
        role = r.role(name)
        if role is None or role.pool == "inline":
            continue
        if role.baseline:
            groups.setdefault(role.baseline, []).append(name)
        else:
            own.append(name)
    parts = [f"{b} for {', '.join(names)}" for b, names in groups.items()]
    parts += [f"the 1-worker pool for {name}" for name in own]
    return "; ".join(parts)


def _task_sizes(r: PoolResults) -> list[str]:
    if all(m.measured_task_ms is None for m in r.measurements):
        return ["Task sizes were not measured where the tasks ran (a result written before "
                "schema 4, calibrated in the harness's own process).", ""]  # fmt: skip
    missed = off_size(r)
    band = f"±{r.tolerance:.0%}"
    if not missed:
        return [f"Every configuration's task was within {band} of the size asked, measured "
                "where the tasks ran (the kernel alone in each pyperf worker process; for Go, "
                "the one-worker batches).", ""]  # fmt: skip
    each = "; ".join(
        f"{m.implementation} ×{m.workers}, {m.variant.label} {task(m.task_ms)}: "
        f"{m.measured_task_ms:.3g} ms"
        for m in missed
    )
    return [
        f"**Task sizes that missed the size asked by more than {band}** (measured where the "
        f"tasks ran), so their figures are not at the size their row says: {each}.",
        "",
    ]


def section(study: Study, run: RunResult, run_dir: Path) -> ReportSection:
    """The reading (for the top) and the pool sections (after the service results)."""
    r = from_study(study)
    top = reading(r, run)
    most = max(workers(r), default=1)
    lines = [
        "## Pools without a network",
        "",
        f"The same pools timed in process on batches of identical tasks ({_tools(r)}), pinned "
        f"to CPUs {r.cpus}. Task sizes are calibrated per language where the tasks run: a "
        f"{r.scaling_ms:g} ms task is {r.scaling_ms:g} ms of one worker's time in every "
        "implementation. Throughput is the median over every timed batch with its 95% bootstrap "
        "interval.",
        "",
        *_task_sizes(r),
        "### Throughput against workers",
        "",
    ]
    if r.measurements and scaling_plot(r, run_dir / SCALING_PNG):
        lines += [f"![throughput against workers]({SCALING_PNG})", ""]
    if r.measurements:
        lines += [
            *scaling_table(r),
            "",
            f"Efficiency ×{most} = tasks/s at {most} workers / ({most} × tasks/s at 1 worker) of "
            "the same pool; speedup over inline = tasks/s / the same work run inline on one "
            f"worker ({_baselines(r)}). Measured task ms: the kernel's time where the tasks ran.",
            "",
        ]
    lines += ["### The overhead crossover by task size", ""]
    if r.measurements and crossover_plot(r, run_dir / CROSSOVER_PNG):
        lines += [f"![speedup over inline by task size]({CROSSOVER_PNG})", ""]
    if r.measurements:
        lines += [
            *crossover_table(r),
            "",
            "Overhead µs/task = 1 / (process pool tasks/s at 1 worker) − 1 / (inline tasks/s): "
            "what a task costs on a worker process beyond its kernel; where that is under 5% of "
            "the task it cannot be told from the spread of the batches.",
            "",
        ]
    ft = r.free_threaded
    if ft.asked:
        used = f"used, {ft.interpreter or ''}" if ft.available else ft.note
        lines += [f"Free-threaded CPython: {used}.", ""]
    if r.errors:
        lines += ["Configurations that could not be measured:", ""]
        lines += [f"- {e}" for e in r.errors]
        lines.append("")
    calib = ", ".join(f"{k} {ns:,.2f} ns" for k, ns in sorted(r.ns_per_round.items()))
    if calib:
        lines += [f"Calibration (per kernel round): {calib}.", ""]
    return ReportSection(reading=top, lines=lines)
