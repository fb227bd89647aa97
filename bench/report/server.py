"""What the system counted of its own time and work: the report's server-side sections.

From the stored run alone, for a pattern whose `[scenario]` names them (system.toml):

- **Where the server's time goes** (`server_latency_parts`): histograms, in seconds, of the
  consecutive parts of a request's time in the server (queue, batch formation, compute …), each
  observed once per answered request. Per implementation and rate: the mean of each part (its
  histogram's sum ÷ count over the window), their sum, the server's own mean latency
  (`server_latency_metric`) and how far the sum is from it. The parts are meant to add up to the
  latency: a gap of more than `PARTS_TOLERANCE` says the split misses some of the time, and the
  report says so.
- **Distributions** (`server_histograms`): any other histogram (samples per forward pass …), per
  implementation and rate: its mean and the share of observations in each bucket, so a reader
  sees the distribution move with the load.

Means come from a trial's deltas of `_sum` and `_count` (exact, unlike a quantile of buckets);
each figure is the median over the point's valid trials with its bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.collect.prometheus import histogram_buckets, histogram_quantile_bounds, series_total
from bench.models import Estimate, ImplementationResult, LoadPoint, RunResult, Trial
from bench.report.sections import ReportSection
from bench.stats.summary import estimate

#: How far the parts' sum may be from the server's own mean latency and still "add up".
PARTS_TOLERANCE = 0.05

#: Past this share of errors, the latency's requests are not those the parts describe.
MAX_REFUSED = 0.01


def histogram_mean(metrics: dict[str, float], name: str) -> float | None:
    """The mean of one histogram's observations in a trial's deltas (over all its label sets);
    None without any."""
    count = series_total(metrics, f"{name}_count") or 0.0
    total = series_total(metrics, f"{name}_sum")
    if count <= 0 or total is None:
        return None
    return total / count


def bucket_shares(metrics: dict[str, float], name: str) -> list[tuple[float, float, float]]:
    """(lower bound, upper bound, share of observations) of each non-cumulative bucket."""
    cumulative = histogram_buckets(metrics, name)
    if not cumulative or cumulative[-1][1] <= 0:
        return []
    total = cumulative[-1][1]
    out, lower, below = [], 0.0, 0.0
    for bound, count in cumulative:
        out.append((lower, bound, (count - below) / total))
        lower, below = bound, count
    return out


def valid_trials(point: LoadPoint) -> list[Trial]:
    return [t for t in point.trials if t.valid] or list(point.trials)


def point_estimate(point: LoadPoint, figure: Callable[[Trial], float | None]) -> Estimate | None:
    values = [v for v in (figure(t) for t in valid_trials(point)) if v is not None]
    return estimate(values) if values else None


def _ms(e: Estimate | None) -> str:
    if e is None:
        return "—"

    def fmt(seconds: float) -> str:
        return f"{seconds * 1000:.3g}" if e.median < 1 else f"{seconds * 1000:,.0f}"

    if e.n < 2 or e.low == e.high:
        return fmt(e.median)
    return f"{fmt(e.median)} ({fmt(e.low)} to {fmt(e.high)})"


def rate_cell(point: LoadPoint) -> str:
    return f"{point.target_rps:,.0f}" if point.target_rps is not None else "closed-loop"


def _measured(run: RunResult) -> list[tuple[ImplementationResult, LoadPoint]]:
    return [(i, p) for i in run.implementations for p in i.points if p.trials]


def parts_section(run: RunResult) -> tuple[list[str], list[str]]:
    """The latency split's table, and a reading bullet when some point's parts do not add up."""
    parts = run.scenario.server_latency_parts
    total_metric = run.scenario.server_latency_metric
    if not parts or total_metric is None:
        return [], []
    rows, gaps = [], []
    for impl, point in _measured(run):
        means = [point_estimate(point, _mean_of(n)) for n in parts]
        total = point_estimate(point, _mean_of(total_metric))
        summed = point_estimate(point, lambda t: _parts_sum(t, parts))
        gap, refused = None, _refused(point)
        if summed is not None and total is not None and total.median > 0:
            gap = summed.median / total.median - 1
            if abs(gap) > PARTS_TOLERANCE and refused <= MAX_REFUSED:
                gaps.append(f"{impl.name} at {rate_cell(point)} req/s ({gap:+.1%})")
        cells = [impl.name, rate_cell(point), *map(_ms, means), _ms(summed), _ms(total)]
        if gap is None:
            cells.append("—")
        elif refused > MAX_REFUSED:
            cells.append(f"not comparable: {refused:.1%} refused")
        else:
            cells.append(f"{gap:+.1%}")
        rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return [], []
    names = [_part_name(n, total_metric) for n in parts]
    head = ["implementation", "target req/s", *(f"{n} ms" for n in names), "sum ms",
            "server latency ms", "sum vs latency"]  # fmt: skip
    lines = [
        "## Where the server's time goes",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *rows,
        "",
        f"Means per request, from the system's own histograms ({', '.join(f'`{n}`' for n in parts)}"
        f" against `{total_metric}`): each histogram's sum over its count in the window. The "
        f"parts follow one another in a request's life, so they should add up to the server's "
        f"own latency; within {PARTS_TOLERANCE:.0%} they do, and what is left is work none of "
        "them covers. Where the system refused more than "
        f"{MAX_REFUSED:.0%} of the requests the two are not compared: refusals count in the "
        "latency, quickly, and in none of the parts.",
        "",
    ]
    reading = []
    if gaps:
        reading.append(
            f"- The server's latency split does not add up within {PARTS_TOLERANCE:.0%} at "
            + "; ".join(gaps)
            + ": its parts miss some of the time there."
        )
    return lines, reading


def _mean_of(name: str) -> Callable[[Trial], float | None]:
    return lambda t: histogram_mean(t.server_metrics, name)


def _refused(point: LoadPoint) -> float:
    """The share of the point's requests that failed, over its valid trials."""
    trials = valid_trials(point)
    requests = sum(t.load.requests for t in trials)
    return sum(t.load.errors for t in trials) / requests if requests else 0.0


def _parts_sum(trial: Trial, parts: Sequence[str]) -> float | None:
    means = [histogram_mean(trial.server_metrics, n) for n in parts]
    return None if any(m is None for m in means) else math.fsum(m for m in means if m)


def _part_name(metric: str, total_metric: str) -> str:
    """`svc_batch_formation_seconds` → `batch formation` (the pattern's prefix dropped)."""
    prefix = total_metric.split("_", 1)[0] + "_"
    return metric.removeprefix(prefix).removesuffix("_seconds").replace("_", " ")


def _bucket_label(lower: float, upper: float) -> str:
    if math.isinf(upper):
        return f"> {lower:g}"
    if upper == int(upper) and lower == int(lower) and upper - lower <= 1:
        return f"{upper:g}"
    if upper == int(upper) and lower == int(lower):
        return f"{lower + 1:g} to {upper:g}"
    return f"{lower:g} to {upper:g}"


def histogram_section(run: RunResult, name: str) -> list[str]:
    """One histogram's mean and bucket shares per implementation and rate (all trials pooled)."""
    rows: list[tuple[str, str, Estimate | None, str, list[tuple[float, float, float]]]] = []
    for impl, point in _measured(run):
        pooled: dict[str, float] = {}
        for t in valid_trials(point):
            for key, value in t.server_metrics.items():
                if key.startswith(f"{name}_bucket{{"):
                    pooled[key] = pooled.get(key, 0.0) + value
        shares = bucket_shares(pooled, name)
        if shares:
            mean = point_estimate(point, lambda t: histogram_mean(t.server_metrics, name))
            p99 = histogram_quantile_bounds(pooled, name, 0.99)
            within = "—" if p99 is None else _bucket_label(*p99)
            rows.append((impl.name, rate_cell(point), mean, within, shares))
    if not rows:
        return []
    bounds = [(lo, up) for lo, up, _ in rows[0][4]]
    used = [k for k, _ in enumerate(bounds) if any(r[4][k][2] > 0 for r in rows if len(r[4]) > k)]
    head = ["implementation", "target req/s", "mean", "p99 within",
            *(_bucket_label(*bounds[k]) for k in used)]  # fmt: skip
    lines = [f"## Distribution of `{name}`", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    for impl_name, rate, mean, within, shares in rows:
        m = "—" if mean is None else _plain(mean)
        cells = [f"{shares[k][2]:.0%}" if k < len(shares) else "—" for k in used]
        lines.append("| " + " | ".join([impl_name, rate, m, within, *cells]) + " |")
    lines += [
        "",
        "Share of the observations in each bucket of the system's histogram (its upper bounds "
        "head the columns; all valid trials of a point pooled), the mean (its sum over its "
        "count, median of the trials) and the bucket the pooled p99 lies in.",
        "",
    ]
    return lines


def _plain(e: Estimate) -> str:
    if e.n < 2 or e.low == e.high:
        return f"{e.median:.3g}"
    return f"{e.median:.3g} ({e.low:.3g} to {e.high:.3g})"


def section(run: RunResult) -> ReportSection:
    """The server-side sections the run's scenario asks for; empty when it names none."""
    lines, reading = parts_section(run)
    for name in run.scenario.server_histograms:
        lines += histogram_section(run, name)
    return ReportSection(reading=reading, lines=lines)
