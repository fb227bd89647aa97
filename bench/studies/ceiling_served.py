"""What the run's servers served, set against the raw ceiling: efficiency, the low-load penalty
of batching and the throughput at the SLO. Pure functions of the stored run and ceiling.

The servers' `batch_metric` is a histogram with one observation per forward pass whose value is
the samples in it: over a trial's window, its `_sum` delta is the samples computed and its
`_count` delta the forward passes. The harness scrapes /metrics when it opens and when it closes
the measured window, at the generator's window start and `duration_s` later (it polls every
50 ms), so the deltas span the trial's `LoadStats.duration_s` to within a poll and a scrape: that
is the time the served samples/s divides by.

Per trial: served samples/s = `_sum` / duration; realised mean batch = `_sum` / `_count`;
efficiency = served ÷ the ceiling at that mean batch (log-linear between the batch sizes
measured, clamped to the ends). Each figure is the median over a point's valid trials with its
bootstrap interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult, Trial
from bench.stats.summary import estimate as _estimate
from bench.studies.ceiling_data import Ceiling

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def histogram_part(metrics: dict[str, float], name: str, part: str) -> float | None:
    """A histogram's `_sum` or `_count` delta, over all its label sets; None when absent."""
    base = f"{name}_{part}"
    found = [v for k, v in metrics.items() if k == base or k.startswith(base + "{")]
    return math.fsum(found) if found else None


def info_labels(run: RunResult, name: str) -> dict[str, dict[str, str]]:
    """Each implementation's info gauge (`name{label="…",…}` = 1), its labels, from the first
    trial that has it."""
    out: dict[str, dict[str, str]] = {}
    for impl in run.implementations:
        for trial in (t for p in impl.points for t in p.trials):
            key = next((k for k in trial.server_metrics if k.startswith(name + "{")), None)
            if key is not None:
                found = _LABEL.findall(key[len(name) :])
                out[impl.name] = {k: v for k, v in found if v}
                break
    return out


def _order(rate: float | None) -> tuple[bool, float]:
    return rate is None, rate or 0.0


def _valid(point: LoadPoint) -> list[Trial]:
    return [t for t in point.trials if t.valid]


@dataclass(frozen=True, kw_only=True)
class Efficiency:
    """One implementation at one load point."""

    implementation: str
    rate: float | None
    served: Estimate
    """Samples/s the servers computed."""
    mean_batch: Estimate
    efficiency: Estimate
    """Served ÷ the ceiling at each trial's mean batch."""
    ceiling: float
    """The ceiling at the median mean batch, samples/s."""


def efficiency_at(ceiling: Ceiling, impl: str, point: LoadPoint, metric: str) -> Efficiency | None:
    served, batches, shares = [], [], []
    for trial in _valid(point):
        total = histogram_part(trial.server_metrics, metric, "sum")
        passes = histogram_part(trial.server_metrics, metric, "count")
        if total is None or not passes or total <= 0 or trial.load.duration_s <= 0:
            continue
        rate, batch = total / trial.load.duration_s, total / passes
        top = ceiling.at(batch)
        if not top > 0:
            continue
        served.append(rate)
        batches.append(batch)
        shares.append(rate / top)
    if not served:
        return None
    mean = _estimate(batches)
    return Efficiency(implementation=impl, rate=point.target_rps, served=_estimate(served),
                      mean_batch=mean, efficiency=_estimate(shares),
                      ceiling=ceiling.at(mean.median))  # fmt: skip


def efficiencies(ceiling: Ceiling, run: RunResult, metric: str) -> list[Efficiency]:
    """Every implementation's points with the metric, in the run's order and ascending rate."""
    out: list[Efficiency] = []
    for impl in run.implementations:
        for point in sorted(impl.points, key=lambda p: _order(p.target_rps)):
            found = efficiency_at(ceiling, impl.name, point, metric)
            if found is not None:
                out.append(found)
    return out


def at_rate(found: Iterable[Efficiency], impl: str, rate: float | None) -> Efficiency | None:
    return next((e for e in found if e.implementation == impl and e.rate == rate), None)


@dataclass(frozen=True, kw_only=True)
class Penalty:
    """One implementation's median latency over the baseline's at their lowest common rate."""

    implementation: str
    rate: float | None
    p50: Estimate
    baseline_p50: Estimate
    difference: Estimate
    """ms; paired by trial index, or (unpaired) the difference of medians, extreme intervals."""
    paired: bool
    server_mean_ms: tuple[float, float] | None = None
    """The servers' own mean request time (latency_metric), this one's and the baseline's."""


def _points(impl: ImplementationResult) -> dict[float | None, LoadPoint]:
    return {p.target_rps: p for p in impl.points if _valid(p)}


def _server_mean_ms(point: LoadPoint, metric: str | None) -> float | None:
    if metric is None:
        return None
    means = []
    for t in _valid(point):
        total = histogram_part(t.server_metrics, metric, "sum")
        count = histogram_part(t.server_metrics, metric, "count")
        if total is not None and count:
            means.append(1000.0 * total / count)
    return _estimate(means).median if means else None


def penalty(
    impl: ImplementationResult, base: ImplementationResult, latency_metric: str | None = None
) -> Penalty | None:
    """At the lowest rate both measured with valid trials; None when they share none."""
    mine, theirs = _points(impl), _points(base)
    common = sorted(mine.keys() & theirs.keys(), key=_order)
    if not common:
        return None
    rate = common[0]
    a, b = mine[rate], theirs[rate]
    p50a = {t.index: t.load.latency_ms.p50 for t in _valid(a)}
    p50b = {t.index: t.load.latency_ms.p50 for t in _valid(b)}
    ea, eb = _estimate(list(p50a.values())), _estimate(list(p50b.values()))
    pairs = sorted(p50a.keys() & p50b.keys())
    if pairs:
        difference = _estimate([p50a[i] - p50b[i] for i in pairs])
    else:
        difference = Estimate(median=ea.median - eb.median, low=ea.low - eb.high,
                              high=ea.high - eb.low, n=min(ea.n, eb.n))  # fmt: skip
    means = _server_mean_ms(a, latency_metric), _server_mean_ms(b, latency_metric)
    return Penalty(implementation=impl.name, rate=rate, p50=ea, baseline_p50=eb,
                   difference=difference, paired=bool(pairs),
                   server_mean_ms=(means[0], means[1])
                   if means[0] is not None and means[1] is not None else None)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AtSlo:
    """An implementation's highest rate meeting the SLO, in samples/s."""

    implementation: str
    rate: float | None
    """Requests/s; None: it met the SLO at no rate measured."""
    samples_s: float | None
    lower_bound: bool
    """It met the SLO at the highest rate measured (or the search never found a failing one)."""
    searched: bool


def at_slo(impl: ImplementationResult, samples_per_request: int) -> AtSlo:
    search = impl.search
    if search is not None and search.best_rate is not None:
        rate: float | None = search.best_rate
        bound = search.first_failing_rate is None or search.limited_by_generator
    else:
        rate = impl.knee_rps
        highest = max((p.target_rps for p in impl.points if p.valid and p.target_rps), default=None)
        bound = rate is not None and highest is not None and rate >= highest
    samples = rate * samples_per_request if rate is not None else None
    return AtSlo(implementation=impl.name, rate=rate, samples_s=samples, lower_bound=bound,
                 searched=search is not None and search.best_rate is not None)  # fmt: skip


def ratio_bound(mine: AtSlo, base: AtSlo) -> Callable[[str], str]:
    """How to read mine ÷ base: `≥ 3.1×` when only mine is a lower bound, `≤` when only the
    baseline's is, `~` (no bound either way) when both are."""
    if mine.lower_bound and base.lower_bound:
        return lambda text: f"~{text}"
    if mine.lower_bound:
        return lambda text: f"≥ {text}"
    if base.lower_bound:
        return lambda text: f"≤ {text}"
    return lambda text: text
