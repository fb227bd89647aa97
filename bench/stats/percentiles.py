"""Latency statistics over HDR histograms. Pure functions: no I/O, no processes.

Histograms hold microseconds from 1 µs to one hour at three significant digits, so every
percentile is within 0.1% of the recorded value (Locust's own buckets round to 2 digits and
coarser above 1 s).
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from bench.models import Percentiles

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3

#: Percentiles drawn on a spectrum plot: dense in the tail, as HdrHistogram's plotter does.
SPECTRUM_PERCENTILES: tuple[float, ...] = tuple(
    100.0 * (1.0 - 10.0 ** (-k / 20.0)) for k in range(0, 101)
)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode(hist: HdrHistogram) -> str:
    encoded: bytes = hist.encode()
    return encoded.decode("ascii")


def decode(text: str) -> HdrHistogram:
    hist: HdrHistogram = HdrHistogram.decode(text.encode("ascii"))
    return hist


def value_ms(hist: HdrHistogram, percentile: float) -> float:
    return float(hist.get_value_at_percentile(percentile)) / 1000.0


def percentiles(hist: HdrHistogram) -> Percentiles:
    if hist.get_total_count() == 0:
        return Percentiles(p50=0.0, p90=0.0, p95=0.0, p99=0.0, p999=0.0, max=0.0, mean=0.0)
    return Percentiles(
        p50=value_ms(hist, 50.0),
        p90=value_ms(hist, 90.0),
        p95=value_ms(hist, 95.0),
        p99=value_ms(hist, 99.0),
        p999=value_ms(hist, 99.9),
        max=float(hist.get_max_value()) / 1000.0,
        mean=float(hist.get_mean_value()) / 1000.0,
    )


def spectrum(hist: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, latency ms) points up to the highest percentile the sample count supports."""
    count = hist.get_total_count()
    if count == 0:
        return []
    # Beyond 1 - 1/count a percentile is just the maximum: stop there, then add the maximum.
    limit = 100.0 * (1.0 - 1.0 / count) if count > 1 else 0.0
    points = [(p, value_ms(hist, p)) for p in SPECTRUM_PERCENTILES if p <= limit]
    points.append((100.0 * (1.0 - 1.0 / (count + 1)), float(hist.get_max_value()) / 1000.0))
    return points


def tail_axis(percentile: float) -> float:
    """x position for a percentile on a log tail axis: 1/(1-p), so 90% → 10, 99% → 100."""
    return 1.0 / (1.0 - min(percentile, 99.9999) / 100.0)
