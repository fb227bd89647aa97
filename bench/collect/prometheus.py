"""A system's Prometheus metrics: scrape an endpoint, and turn two scrapes into what happened in
between (counters and histograms as differences, gauges as their last value).
"""

from __future__ import annotations

import math
import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: Runtime metrics every client library adds; they describe the exporter, not the pattern.
_RUNTIME_PREFIXES = ("go_", "python_", "process_", "promhttp_")


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse_metrics(text: str) -> tuple[dict[str, float], set[str]]:
    """Samples by `name{labels}`, and the keys that are gauges (the rest accumulate)."""
    values: dict[str, float] = {}
    gauges: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.name.startswith(_RUNTIME_PREFIXES):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = _key(sample.name, sample.labels)
            values[key] = float(sample.value)
            if family.type in ("gauge", "unknown", "info", "stateset"):
                gauges.add(key)
    return values, gauges


def scrape(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def metric_deltas(before: str, after: str) -> dict[str, float]:
    """What the system counted between two scrapes of its /metrics."""
    old, _ = parse_metrics(before)
    new, gauges = parse_metrics(after)
    return {
        key: value if key in gauges else value - old.get(key, 0.0)
        for key, value in sorted(new.items())
    }


_LE = re.compile(r'le="([^"]+)"')


def histogram_buckets(metrics: dict[str, float], name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets, (upper bound, count) by bound, from `name_bucket{le=…}`
    samples (the last bound is inf): summed over its other labels (a route, a status code), the
    histogram of every request, as Prometheus's `sum by (le)` gives it."""
    buckets: dict[float, float] = {}
    for key, count in metrics.items():
        if key.startswith(f"{name}_bucket{{"):
            match = _LE.search(key)
            if match:
                bound = float(match.group(1))
                buckets[bound] = buckets.get(bound, 0.0) + count
    return sorted(buckets.items())


def series_total(metrics: dict[str, float], name: str) -> float | None:
    """A series summed over its labels (`name` alone, or every `name{…}`); None when absent."""
    found = [v for k, v in metrics.items() if k == name or k.startswith(name + "{")]
    return sum(found) if found else None


def histogram_quantile_bounds(
    metrics: dict[str, float], name: str, q: float
) -> tuple[float, float] | None:
    """The bucket bounds (seconds) that quantile q (0..1) of a Prometheus histogram lies in.

    A bucketed histogram knows no more than that: interpolating inside a bucket, as Prometheus's
    histogram_quantile() does, invents a figure (a p99 of 108 ms reads as 212 ms in a
    100 to 250 ms bucket). None when the histogram is empty or absent; the upper bound is inf when
    the quantile lies beyond the last finite bucket.
    """
    buckets = histogram_buckets(metrics, name)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower, bound
        lower = bound
    return lower, math.inf
