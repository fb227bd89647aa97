from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.engines.recording import INTENDED, _error_kind, _Recorder, arrivals
from bench.stats.percentiles import decode


class Refused(Exception):
    pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_records_after_warmup_and_counts_errors_by_kind(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = _Recorder(tmp_path / "rec.json", warmup_s=2.0, duration_s=10.0, clock=clock)
    recorder.on_test_start()
    clock.now += 1.0
    recorder.on_request(response_time=2.5)  # inside the warm-up: dropped
    clock.now += 1.5
    recorder.on_request(response_time=600.0)  # sent at 1001.9, before the window: dropped
    clock.now += 1.0
    recorder.on_request(response_time=2.5)
    recorder.on_request(response_time=10.0, exception=Exception("503 Service Unavailable"))
    recorder.on_request(response_time=1.0, exception=Refused("connection refused"))
    clock.now = 1012.5
    recorder.on_request(response_time=1.0)  # sent after the window closed at 1012: dropped
    recorder.on_test_stop()
    data = json.loads((tmp_path / "rec.json").read_text())
    assert data["window_start"] == 1002.0
    assert data["window_end"] == 1012.0
    assert data["requests"] == 3
    assert data["errors"] == 2
    assert data["error_kinds"] == {"HTTP 503": 1, "Refused": 1}
    hist = decode(data["histogram"])
    assert hist.get_total_count() == 3
    assert abs(hist.get_max_value() - 10_000) <= 10  # µs, within HDR precision


def test_requests_started_during_warmup_are_not_recorded(tmp_path: Path) -> None:
    recorder = _Recorder(tmp_path / "rec.json", warmup_s=3600.0)
    recorder.on_test_start()
    recorder.on_request(response_time=2.0)
    recorder.on_test_stop()
    assert json.loads((tmp_path / "rec.json").read_text())["requests"] == 0


def test_error_kind_reads_a_status_or_falls_back_to_the_type() -> None:
    assert _error_kind(Exception("HTTP 500: x")) == "HTTP 500"
    assert _error_kind(TimeoutError("timed out")) == "TimeoutError"


def test_open_loop_latency_counts_from_the_intended_send_time(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = _Recorder(tmp_path / "rec.json", warmup_s=0.0, duration_s=10.0, clock=clock)
    recorder.on_test_start()  # window 1000..1010
    # Intended at 1001.0, actually sent 150 ms late at 1001.15, answered 50 ms later.
    clock.now = 1001.2
    recorder.on_request(response_time=50.0, context={INTENDED: 1001.0})
    # Intended before the window: not recorded, though sent inside it.
    recorder.on_request(response_time=10.0, context={INTENDED: 999.9})
    recorder.on_test_stop()
    data = json.loads((tmp_path / "rec.json").read_text())
    assert data["requests"] == 1
    assert data["sent_in_window"] == 2
    assert abs(decode(data["histogram"]).get_max_value() - 200_000) <= 200  # corrected: 200 ms
    assert abs(decode(data["uncorrected_histogram"]).get_max_value() - 50_000) <= 50
    assert abs(decode(data["slip_histogram"]).get_max_value() - 150_000) <= 150


def test_constant_and_poisson_arrivals() -> None:
    constant = arrivals(100.0, "constant", seed=1, start=10.0)
    assert [round(constant(), 6) for _ in range(3)] == [10.0, 10.01, 10.02]
    first = arrivals(1000.0, "poisson", seed=7, start=0.0)
    times = [first() for _ in range(20_001)]
    assert times[-1] / 20_000 == pytest.approx(1 / 1000.0, rel=0.05)  # mean gap 1 ms
    again = arrivals(1000.0, "poisson", seed=7, start=0.0)
    assert [again() for _ in range(5)] == times[:5]
    with pytest.raises(ValueError, match="constant or poisson"):
        arrivals(1.0, "bursty", seed=1, start=0.0)
    with pytest.raises(ValueError, match="positive"):
        arrivals(0.0, "constant", seed=1, start=0.0)
