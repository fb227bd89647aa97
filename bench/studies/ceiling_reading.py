"""The ceiling study's reading for the top of the report, and the formats of its figures: what
batching bought at the SLO against what the model allows, how much of the ceiling the servers
used at their knee, and what batching cost at low load. Each bullet carries its figures; a bullet
whose figures the run lacks is left out (the sections say what is missing).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.models import Estimate, RunResult
from bench.studies import ceiling_served as served
from bench.studies.ceiling_data import Ceiling
from bench.studies.ceiling_spec import CeilingSpec


def rate(value: float) -> str:
    """Samples/s (or req/s) to three significant digits: 812, 1,170 or 22,400."""
    if not math.isfinite(value) or value <= 0:
        return "—"
    if value < 100:
        return f"{value:.3g}"
    return f"{round(value, 2 - math.floor(math.log10(value))):,.0f}"


def pct(value: float) -> str:
    return f"{100 * value:.{0 if abs(value) >= 0.1 else 1}f}%"


def _ms(value: float) -> str:
    return f"{value:+.2f}"


def _plain(value: float) -> str:
    return f"{value:.3g}"


def cell(e: Estimate, fmt: str = "rate") -> str:
    """A median with its interval, `1,170 (1,100 to 1,230)`; `rate`, `pct`, `ms` or `plain`."""
    show: Callable[[float], str] = {"rate": rate, "pct": pct, "ms": _ms, "plain": _plain}[fmt]
    if e.n < 2 or e.low == e.high:
        return show(e.median)
    return f"{show(e.median)} ({show(e.low)} to {show(e.high)})"


def raw_ratio_text(c: Ceiling) -> str:
    """The ceiling at the largest batch over the smallest, with both figures."""
    lo, hi = c.smallest, c.largest
    if lo is None or hi is None or lo.rate.median <= 0:
        return "unknown"
    return (f"{hi.rate.median / lo.rate.median:.2f}× (the ceiling at batch {hi.batch}, "
            f"{rate(hi.rate.median)} samples/s, over batch {lo.batch}, "
            f"{rate(lo.rate.median)})")  # fmt: skip


def _req(r: float | None) -> str:
    return f"{r:,.0f} req/s" if r is not None else "its closed-loop load"


def slo_reading(c: Ceiling, spec: CeilingSpec, run: RunResult) -> list[str]:
    names = [i.name for i in run.implementations]
    if run.scenario.slo is None or spec.baseline not in names:
        return []
    base = served.at_slo(run.implementation(spec.baseline), spec.samples_per_request)
    out: list[str] = []
    for impl in run.implementations:
        if impl.name == spec.baseline:
            continue
        mine = served.at_slo(impl, spec.samples_per_request)
        if not mine.samples_s or not base.samples_s:
            who = impl.name if not mine.samples_s else spec.baseline
            out.append(f"- **Batching at the SLO: no ratio**: {who} met the SLO "
                       f"({run.scenario.slo}) at no rate measured.")  # fmt: skip
            continue
        ratio = served.ratio_bound(mine, base)(f"{mine.samples_s / base.samples_s:.2f}×")
        text = (f"- **Batching at the SLO: {impl.name} serves {ratio} the samples/s of "
                f"{spec.baseline}** ({rate(mine.samples_s)} against {rate(base.samples_s)} "
                f"samples/s, at {_req(mine.rate)} and {_req(base.rate)})")  # fmt: skip
        if len(c.points) > 1:
            text += f", against a raw ratio of {raw_ratio_text(c)}"
        if mine.lower_bound and not base.lower_bound:
            text += f"; a lower bound: {impl.name} met the SLO at the highest rate tried"
        elif base.lower_bound:
            text += (f"; {spec.baseline} met the SLO at the highest rate tried, so the ratio "
                     "is no lower bound")  # fmt: skip
        out.append(text + ".")
    return out


def _efficiency_text(e: served.Efficiency) -> str:
    return (f"{rate(e.served.median)} samples/s at a mean batch of {e.mean_batch.median:.3g}, "
            f"{cell(e.efficiency, 'pct')} of the ceiling there "
            f"({rate(e.ceiling)} samples/s)")  # fmt: skip


def efficiency_reading(run: RunResult, found: list[served.Efficiency]) -> list[str]:
    out: list[str] = []
    for impl in run.implementations:
        mine = [e for e in found if e.implementation == impl.name]
        if not mine:
            continue
        highest = max(mine, key=lambda e: e.rate or 0.0)
        knee = served.at_rate(mine, impl.name, impl.knee_rps) if impl.knee_rps else None
        parts = []
        if knee is not None:
            parts.append(f"at its knee, {_req(knee.rate)}, it computed {_efficiency_text(knee)}")
        if knee is None or knee.rate != highest.rate:
            parts.append(f"at the highest rate measured, {_req(highest.rate)}, "
                         f"{_efficiency_text(highest)}")  # fmt: skip
        out.append(f"- **{impl.name}'s efficiency**: {'; '.join(parts)}.")
    return out


def penalty_reading(spec: CeilingSpec, run: RunResult) -> list[str]:
    if spec.baseline not in [i.name for i in run.implementations]:
        return []
    base = run.implementation(spec.baseline)
    out: list[str] = []
    for impl in run.implementations:
        p = served.penalty(impl, base) if impl.name != spec.baseline else None
        if p is None:
            continue
        d, bound = p.difference, spec.max_queue_delay_ms
        if d.high <= bound:
            verdict = f"within the {bound:g} ms a request may wait for a batch"
        elif d.median <= bound:
            verdict = f"within the {bound:g} ms bound at the median, but its interval reaches past"
        else:
            verdict = f"beyond the {bound:g} ms a request may wait for a batch"
        out.append(f"- **Low-load penalty of {impl.name}**: at {_req(p.rate)} its p50 is "
                   f"{cell(d, 'ms')} ms against {spec.baseline}'s ({p.p50.median:.2f} against "
                   f"{p.baseline_p50.median:.2f} ms): {verdict}.")  # fmt: skip
    return out


def reading(
    c: Ceiling, spec: CeilingSpec, run: RunResult, found: list[served.Efficiency]
) -> list[str]:
    """Bullets for the report's top: the SLO ratio, the efficiency at the knee, the penalty."""
    return slo_reading(c, spec, run) + efficiency_reading(run, found) + penalty_reading(spec, run)
