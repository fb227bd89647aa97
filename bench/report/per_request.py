"""What one request cost the whole system: CPU by process, and the counts the scenario names.

From the stored run alone:

- **CPU per request, by process**: for implementations whose supports are part of the system
  measured (`cpus = "system"`: a database, a relay, a core behind a proxy), the CPU each process
  tree spent per answered request over the trial's window, the implementation's own first, and
  their sum. A service that looks cheap because its database does the work shows here.
- **Counted per request** (`[scenario] per_request`): counters of the system's or its supports'
  metrics (`pg_statements_calls_total{role="bench_app"}`, or a bare name for the sum over its
  label sets), divided by the requests the system answered in the window: the database round
  trips a request costs, which batching cannot hide from the database's own count.

Each figure is the median over the point's valid trials with its bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.collect.prometheus import series_total
from bench.models import Estimate, RunResult, Trial
from bench.report.sections import ReportSection
from bench.report.server import point_estimate, rate_cell
from bench.stats.summary import answered_per_s, cpu_us_per_call


def _cell(e: Estimate | None, digits: str = ",.0f") -> str:
    if e is None:
        return "—"
    if e.n < 2 or e.low == e.high:
        return format(e.median, digits)
    return f"{e.median:{digits}} ({e.low:{digits}} to {e.high:{digits}})"


def _part_cpu(name: str) -> Callable[[Trial], float | None]:
    def of(t: Trial) -> float | None:
        part = t.system_parts.get(name)
        return cpu_us_per_call(t, part.cpu_percent) if part is not None else None

    return of


def _per_request_of(spec: str) -> Callable[[Trial], float | None]:
    return lambda t: per_request(t, spec)


def cpu_section(run: RunResult) -> list[str]:
    parts = sorted({n for i in run.implementations for p in i.points for t in p.trials
                    for n in t.system_parts})  # fmt: skip
    if not parts:
        return []
    head = ["implementation", "target req/s", "own µs", *(f"{n} µs" for n in parts), "total µs"]
    lines = ["## CPU per request, by process", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    for impl in run.implementations:
        for point in impl.points:
            if not any(t.system_parts for t in point.trials):
                continue
            own = point_estimate(point, lambda t: cpu_us_per_call(t, t.process.cpu_percent))
            each = [point_estimate(point, _part_cpu(n)) for n in parts]
            total = point_estimate(
                point,
                lambda t: cpu_us_per_call(
                    t, t.process.cpu_percent + sum(p.cpu_percent for p in t.system_parts.values())
                ),
            )
            cells = [_cell(own), *(_cell(e) for e in each), _cell(total)]
            lines.append("| " + " | ".join([impl.name, rate_cell(point), *cells]) + " |")
    return [
        *lines,
        "",
        "CPU time of each process tree over the measured window per request the system answered "
        "(its refusals included): the implementation's own, then each process of the system "
        'beside it (system.toml\'s supports with `cpus = "system"`, on the same CPUs).',
        "",
    ]


def counted(metrics: dict[str, float], spec: str) -> float | None:
    """A counter's delta: the exact `name{labels}` key, or a bare name summed over its labels."""
    if "{" in spec:
        return metrics.get(spec)
    return series_total(metrics, spec)


def per_request(t: Trial, spec: str) -> float | None:
    value = counted(t.server_metrics, spec)
    answered = answered_per_s(t) * t.load.duration_s
    return value / answered if value is not None and answered > 0 else None


def counts_section(run: RunResult) -> list[str]:
    specs = run.scenario.per_request
    if not specs:
        return []
    head = ["implementation", "target req/s", *(f"`{s}`" for s in specs)]
    lines = ["## Counted per request", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    rows = 0
    for impl in run.implementations:
        for point in impl.points:
            cells = [_cell(point_estimate(point, _per_request_of(s)), ".2f") for s in specs]
            if all(c == "—" for c in cells):
                continue
            rows += 1
            lines.append("| " + " | ".join([impl.name, rate_cell(point), *cells]) + " |")
    if not rows:
        return []
    return [
        *lines,
        "",
        "Each counter's increase over the measured window (from the system's or its supports' "
        "metrics, scraped as the window opened and closed) over the requests the system answered "
        "in it; a bare name sums its label sets.",
        "",
    ]


def section(run: RunResult) -> ReportSection:
    return ReportSection(lines=[*cpu_section(run), *counts_section(run)])
