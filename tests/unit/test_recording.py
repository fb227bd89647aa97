from __future__ import annotations

import json
from pathlib import Path

from bench.recording import _error_kind, _Recorder
from bench.stats import decode


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
