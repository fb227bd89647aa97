"""Measuring implementations that passed their vectors: one trial, a sweep of rates, a search.

A trial starts the implementation (and the support it needs) afresh, as pyperf runs each
measurement in a fresh worker process, runs the pattern's load engine for one warm-up and one
measured window, collects the system's side of that window, and stops what it started. A sweep
interleaves trials across implementations (A B B A …) at each rate; a search looks for the highest
rate meeting the SLO. A failure of one implementation drops it out; the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from bench.collect.prometheus import histogram_quantile_bounds
from bench.collect.window import SystemGone, SystemWindow
from bench.engines.spec import LoadEngine, LoadError, LoadSpec
from bench.launch.deployment import HOST, Deployment, ImplFailed
from bench.launch.supervisor import Supervisor, exit_text
from bench.models import LoadPoint, ParamValue, SloSearch, Trial
from bench.stats import headroom
from bench.stats import slo as slo_
from bench.stats.summary import make_point, slo_point

#: Upper bound of the max-rate search (requests/s); it starts at the `rate` parameter.
SEARCH_MAX = 200_000.0


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Everything a trial needs besides the implementation's name, rate and index."""

    deployment: Deployment
    supervisor: Supervisor
    engine: LoadEngine
    #: The engine's table for each implementation (its own, or the pattern's).
    tables: Mapping[str, BaseModel]
    params: Mapping[str, ParamValue]
    loadgen_cpus: Sequence[int]
    logs: Path
    tools_root: Path
    server_latency_metric: str | None
    #: Called with (implementation, text, total seconds) when a trial starts.
    phase: Callable[[str, str, float | None], None]
    #: Called with (implementation, seconds done) while a trial runs.
    advance: Callable[[str, float], None]
    #: A variant's parameters (bench/variants.py), by name; the others run with `params`.
    params_of: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=dict)


def _load_spec(m: Measurement, name: str, rate: float | None, index: int) -> LoadSpec:
    p = m.params
    paced = p.get("user_rate")
    label = f"{rate:g}" if rate is not None else "closed"
    return LoadSpec(
        host=HOST,
        port=m.deployment.port(name),
        load_model="open-loop" if rate is not None else "closed-loop",
        duration_s=float(p["duration_s"]),
        warmup_s=float(p["warmup_s"]),
        cpus=m.loadgen_cpus,
        workdir=m.logs / name / f"rate-{label}-trial-{index}",
        rate=rate,
        arrival=str(p["arrival"]),
        seed=int(p.get("seed", 1)) + index,
        users=int(p["users"]),
        spawn_rate=float(p["spawn_rate"]),
        paced_rps=float(p["users"]) * float(paced)
        if isinstance(paced, int | float) and not isinstance(paced, bool) and paced > 0
        else None,
        root=m.deployment.pattern.root,
        tools_root=m.tools_root,
    )


def server_latency(metrics: dict[str, float], name: str | None) -> dict[str, float]:
    """p50 and p99 of the system's own latency histogram, as bucket bounds in ms."""
    if name is None:
        return {}
    out: dict[str, float] = {}
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        bounds = histogram_quantile_bounds(metrics, name, q)
        if bounds is not None and not math.isinf(bounds[1]):
            out[f"{key}_low"], out[f"{key}_high"] = bounds[0] * 1000.0, bounds[1] * 1000.0
    return out


def trial(m: Measurement, name: str, rate: float | None, index: int, trials: int) -> Trial:
    """Start the implementation afresh, measure one window, stop it."""
    p = m.params
    window_s = float(p["warmup_s"]) + float(p["duration_s"])
    started = m.deployment.start(name, m.params_of.get(name, p), "measure")
    try:
        proc = started.system()
        window = SystemWindow(
            proc,
            m.deployment.metrics_url(name),
            float(p["cooldown_s"]),
            parts=m.deployment.system_parts(name, started),
            support_metrics=m.deployment.support_metrics(name),
        )
        spec = _load_spec(m, name, rate, index)
        at = f"{rate:g} req/s, " if rate is not None else ""
        m.phase(name, f"{at}trial {index + 1}/{trials}", window_s)
        try:
            table = m.tables[name]
            load = m.engine.run(table, spec, m.supervisor, window, lambda s: m.advance(name, s))
        except SystemGone as e:
            raise ImplFailed(str(e), e.stderr_tail) from None
        window.cool_down()
        code = proc.exit_code()
        if code is not None:
            raise ImplFailed(f"{exit_text(code)} during the run", proc.stderr_tail())
        if window.process is None:
            raise ImplFailed("the measured window never closed", proc.stderr_tail())
        # A support that died took the window with it: the figures are not the system's.
        casualties = m.deployment.casualties(name, started)
    finally:
        m.deployment.stop(started)
    reasons = [*casualties, *headroom.invalid_reasons(load, poisson=p["arrival"] == "poisson")]
    return Trial(
        index=index,
        load=load,
        process=window.process,
        system_parts=window.parts_process,
        server_metrics=window.metrics,
        server_metrics_error=window.metrics_error,
        server_latency_ms=server_latency(window.metrics, m.server_latency_metric),
        valid=not reasons,
        invalid_reasons=reasons,
    )


def sweep(
    m: Measurement,
    names: Sequence[str],
    rates: Sequence[float | None],
    trials: int,
    failures: dict[str, ImplFailed],
) -> dict[str, list[LoadPoint]]:
    """Every rate, trials interleaved across implementations; a failed one drops out."""
    points: dict[str, list[LoadPoint]] = {n: [] for n in names}
    for rate in rates:
        done: dict[str, list[Trial]] = {n: [] for n in names}
        for index, name in slo_.interleaved(names, trials):
            if name in failures:
                continue
            try:
                done[name].append(trial(m, name, rate, index, trials))
            except ImplFailed as e:
                failures[name] = e
            except LoadError as e:
                failures[name] = ImplFailed(f"load engine: {e}")
        for name in names:
            if done[name]:
                points[name].append(make_point(rate, done[name]))
    return points


def search(
    m: Measurement, name: str, slo: slo_.Slo, trials: int, failures: dict[str, ImplFailed]
) -> tuple[list[LoadPoint], SloSearch | None]:
    """The highest rate meeting the SLO: exponential growth, then bisection."""
    measured: list[LoadPoint] = []

    def measure(rate: float) -> slo_.Point:
        found = [trial(m, name, rate, index, trials) for index in range(trials)]
        measured.append(make_point(rate, found))
        return slo_point(measured[-1], slo)

    def ordered() -> list[LoadPoint]:
        return sorted(measured, key=lambda p: p.target_rps or 0.0)

    try:
        start = float(m.params["rate"])
        found = slo_.find_max_rate(measure, slo, start=start, max_rate=SEARCH_MAX)
    except ImplFailed as e:
        failures[name] = e
        return ordered(), None
    except LoadError as e:
        failures[name] = ImplFailed(f"load engine: {e}")
        return ordered(), None
    result = SloSearch(
        slo=slo.describe(),
        best_rate=found.best_rate,
        first_failing_rate=found.first_failing_rate,
        limited_by_generator=found.limited_by_generator,
        reason=found.reason,
    )
    return ordered(), result
