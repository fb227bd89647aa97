from __future__ import annotations

import math

from bench.collect.prometheus import histogram_quantile_bounds, metric_deltas, parse_metrics

BEFORE = """# TYPE fanout_requests_total counter
fanout_requests_total{code="200"} 10
# TYPE fanout_in_flight gauge
fanout_in_flight 3
# TYPE fanout_request_duration_seconds histogram
fanout_request_duration_seconds_bucket{le="0.01"} 8
fanout_request_duration_seconds_bucket{le="+Inf"} 10
fanout_request_duration_seconds_sum 0.05
fanout_request_duration_seconds_count 10
# TYPE go_goroutines gauge
go_goroutines 12
"""

AFTER = """# TYPE fanout_requests_total counter
fanout_requests_total{code="200"} 110
fanout_requests_total{code="503"} 4
# TYPE fanout_in_flight gauge
fanout_in_flight 1
# TYPE fanout_request_duration_seconds histogram
fanout_request_duration_seconds_bucket{le="0.01"} 90
fanout_request_duration_seconds_bucket{le="+Inf"} 114
fanout_request_duration_seconds_sum 0.65
fanout_request_duration_seconds_count 114
# TYPE go_goroutines gauge
go_goroutines 40
"""


def test_counters_and_histograms_become_differences_and_gauges_stay() -> None:
    deltas = metric_deltas(BEFORE, AFTER)
    assert deltas['fanout_requests_total{code="200"}'] == 100
    assert deltas['fanout_requests_total{code="503"}'] == 4
    assert deltas["fanout_request_duration_seconds_count"] == 104
    assert deltas['fanout_request_duration_seconds_bucket{le="0.01"}'] == 82
    assert deltas["fanout_in_flight"] == 1


def test_runtime_metrics_of_client_libraries_are_left_out() -> None:
    values, _ = parse_metrics(AFTER)
    assert not any(key.startswith("go_") for key in values)


def test_quantile_bounds_are_the_bucket_the_quantile_lies_in() -> None:
    deltas = metric_deltas(BEFORE, AFTER)  # 82 of 104 requests within 10 ms
    name = "fanout_request_duration_seconds"
    assert histogram_quantile_bounds(deltas, name, 0.5) == (0.0, 0.01)
    assert histogram_quantile_bounds(deltas, name, 0.99) == (0.01, math.inf)
    assert histogram_quantile_bounds(deltas, "absent_seconds", 0.5) is None
    assert histogram_quantile_bounds({f'{name}_bucket{{le="+Inf"}}': 0.0}, name, 0.5) is None
