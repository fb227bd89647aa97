"""From trials to a load point: which trials count, and their medians with confidence intervals.

Pure functions over result models. Only valid trials (the generator was not the limit) are
summarised; a point is valid when at least half of its trials are. A point's errors are split by
who produced them (``bench.stats.headroom.split_errors``): ``system_error_rate`` are answers the
system gave (a 503 refusal), ``generator_error_rate`` requests it never answered; ``error_note``
says so in a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.models import Estimate, LoadPoint, Trial
from bench.stats import slo as slo_
from bench.stats.confidence import median_ci, summarize
from bench.stats.headroom import describe_generator_kind, split_errors


def answered_per_s(trial: Trial) -> float:
    """Calls the system answered per second of the window (its refusals included: they cost it
    CPU too); 0 for an empty window."""
    load = trial.load
    answered = load.requests - split_errors(load.error_kinds).generator_total
    return answered / load.duration_s if load.duration_s else 0.0


def cpu_us_per_call(trial: Trial, cpu_percent: float) -> float | None:
    """`cpu_percent` (of one core, over the window) as CPU µs per call answered."""
    per_s = answered_per_s(trial)
    return cpu_percent / 100 * 1e6 / per_s if per_s > 0 else None


def trial_metrics(trial: Trial) -> dict[str, float]:
    """The figures of one trial that are summarised across trials."""
    load = trial.load
    metrics = {
        "throughput_rps": load.throughput_rps,
        "achieved_rps": load.achieved_rps,
        "error_rate": load.errors / load.requests if load.requests else 0.0,
        "cpu_percent": trial.process.cpu_percent,
    }
    for key in ("p50", "p90", "p95", "p99", "p999", "max"):
        value = getattr(load.latency_ms, key)
        if value is not None:  # p95 is None only in files upgraded without a histogram
            metrics[key] = value
    if load.uncorrected_ms is not None:
        metrics |= {"u_p50": load.uncorrected_ms.p50, "u_p99": load.uncorrected_ms.p99}
    if load.slip_ms is not None:
        metrics["slip_p99"] = load.slip_ms.p99
    metrics |= {f"server_{key}": value for key, value in trial.server_latency_ms.items()}
    split = split_errors(load.error_kinds)
    requests = max(load.requests, 1)
    metrics["system_error_rate"] = split.system_total / requests
    metrics["generator_error_rate"] = split.generator_total / requests
    answered = load.requests - split.generator_total
    cpu_us = cpu_us_per_call(trial, trial.process.cpu_percent)
    if cpu_us is not None and trial.process.cpu_percent > 0:
        metrics["cpu_us_per_call"] = cpu_us
        if trial.system_parts:  # the whole system's: the implementation and its parts
            parts = sum(p.cpu_percent for p in trial.system_parts.values())
            metrics["system_cpu_us_per_call"] = cpu_us + (cpu_us_per_call(trial, parts) or 0.0)
    wire = (load.wire_sent_bytes, load.wire_received_bytes)
    if answered > 0 and wire[0] is not None and wire[1] is not None:
        metrics["wire_bytes_per_call"] = (wire[0] + wire[1]) / answered
    if load.stream is not None:
        metrics |= {
            "messages_per_s": load.stream.messages_per_s,
            "first_message_p50": load.stream.first_message_ms.p50,
            "first_message_p99": load.stream.first_message_ms.p99,
            "gap_p50": load.stream.gap_ms.p50,
            "gap_p99": load.stream.gap_ms.p99,
        }
    return metrics


def estimate(samples: Sequence[float]) -> Estimate:
    """The samples' median with its bootstrap interval, as the result stores it."""
    e = median_ci(samples)
    return Estimate(median=e.median, low=e.low, high=e.high, n=e.n)


def make_point(target_rps: float | None, trials: Sequence[Trial]) -> LoadPoint:
    valid = [t for t in trials if t.valid]
    summary = (
        {
            key: Estimate(median=e.median, low=e.low, high=e.high, n=e.n)
            for key, e in summarize([trial_metrics(t) for t in valid]).items()
        }
        if valid
        else {}
    )
    return LoadPoint(
        target_rps=target_rps,
        trials=list(trials),
        summary=summary,
        valid=bool(valid) and 2 * len(valid) >= len(trials),
    )


def slo_point(point: LoadPoint, slo: slo_.Slo) -> slo_.Point:
    """The point as the SLO search sees it: the median latency at the SLO's percentile."""
    key = {50.0: "p50", 90.0: "p90", 95.0: "p95", 99.0: "p99", 99.9: "p999"}.get(
        slo.percentile, "p99"
    )
    latency = point.summary[key].median if key in point.summary else float("inf")
    errors = point.summary["error_rate"].median if "error_rate" in point.summary else 1.0
    rate = point.target_rps if point.target_rps is not None else 0.0
    return slo_.Point(rate=rate, latency_ms=latency, error_rate=errors, valid=point.valid)


def error_note(point: LoadPoint) -> str | None:
    """Whose errors a point's are, over all its trials, in one sentence; None without errors.

    E.g. "errors: 99.2% answered by the system (HTTP 503: 27,181), 0.8% the generator's
    (never sent: the generator's in-flight cap (1,000) was full: 176)".
    """
    split = split_errors(*(t.load.error_kinds for t in point.trials))
    if split.total == 0:
        return None
    cap_hit = any(t.load.in_flight_cap_hit for t in point.trials)

    def listed(kinds: dict[str, int], words: bool) -> str:
        ordered = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(
            f"{describe_generator_kind(k, cap_hit) if words else k}: {n:,}" for k, n in ordered
        )

    parts = []
    if split.system:
        share = 100.0 * split.system_total / split.total
        parts.append(f"{share:.1f}% answered by the system ({listed(split.system, False)})")
    if split.generator:
        share = 100.0 * split.generator_total / split.total
        listing = listed(split.generator, True)
        parts.append(f"{share:.1f}% the generator's, never answered ({listing})")
    return "errors: " + ", ".join(parts)
