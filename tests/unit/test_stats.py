from __future__ import annotations

import pytest

from bench.stats.percentiles import decode, encode, new_histogram, percentiles, spectrum, tail_axis


def test_percentiles_of_a_uniform_sample_are_within_hdr_precision() -> None:
    hist = new_histogram()
    for us in range(1, 100_001):  # 1 µs .. 100 ms, uniform
        hist.record_value(us)
    p = percentiles(hist)
    assert p.p50 == pytest.approx(50.0, rel=1e-3)
    assert p.p90 == pytest.approx(90.0, rel=1e-3)
    assert p.p95 == pytest.approx(95.0, rel=1e-3)
    assert p.p99 == pytest.approx(99.0, rel=1e-3)
    assert p.p999 == pytest.approx(99.9, rel=1e-3)
    assert p.max == pytest.approx(100.0, rel=1e-3)
    assert p.mean == pytest.approx(50.0, rel=1e-3)


def test_empty_histogram_gives_zeros_and_no_spectrum() -> None:
    hist = new_histogram()
    assert percentiles(hist).p99 == 0.0
    assert spectrum(hist) == []


def test_encode_decode_round_trip_keeps_every_count() -> None:
    hist = new_histogram()
    for us in (5, 50, 500, 5_000_000):
        hist.record_value(us)
    back = decode(encode(hist))
    assert back.get_total_count() == 4
    assert back.get_max_value() == hist.get_max_value()
    assert percentiles(back) == percentiles(hist)


def test_spectrum_is_monotonic_and_ends_at_the_maximum() -> None:
    hist = new_histogram()
    for us in range(1, 10_001):
        hist.record_value(us)
    points = spectrum(hist)
    percentiles_ = [p for p, _ in points]
    values = [v for _, v in points]
    assert percentiles_ == sorted(percentiles_)
    assert values == sorted(values)
    assert values[-1] == pytest.approx(10.0, rel=1e-3)
    # With 10,000 samples nothing beyond 99.99% is claimed except the maximum itself.
    assert all(p <= 99.99 for p in percentiles_[:-1])


def test_tail_axis_stretches_the_tail() -> None:
    assert tail_axis(0.0) == pytest.approx(1.0)
    assert tail_axis(90.0) == pytest.approx(10.0)
    assert tail_axis(99.0) == pytest.approx(100.0)
    assert tail_axis(100.0) < float("inf")
