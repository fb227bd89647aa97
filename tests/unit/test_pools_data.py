"""The pool study's results in the generic Study of the result file, and back."""

from __future__ import annotations

import json

from bench.models import Study
from bench.studies.pools_data import from_study, to_study
from tests.unit.test_pools_report import results


def test_results_survive_the_study_and_its_json() -> None:
    r = results()
    study = to_study("pools", {"scaling_ms": 10}, r)
    again = Study.model_validate(json.loads(study.model_dump_json()))
    back = from_study(again)
    assert back.measurements == r.measurements
    assert back.roles == r.roles
    assert back.calibration == r.calibration
    assert back.ns_per_round == r.ns_per_round
    assert (back.scaling_ms, back.task_ms, back.cpus) == (r.scaling_ms, r.task_ms, r.cpus)
    assert back.free_threaded == r.free_threaded
    assert back.service_task == r.service_task


def test_a_series_is_an_implementations_throughput_against_workers_with_units() -> None:
    study = to_study("pools", {}, results())
    series = next(s for s in study.series if s.implementation == "python-processes"
                  and s.label == "hash 1 MiB, 10 ms")  # fmt: skip
    assert (series.x.name, series.x.unit, series.y.name, series.y.unit) == (
        "workers", "workers", "throughput", "tasks/s")  # fmt: skip
    assert [(p.x, p.y.median) for p in series.points] == [(1, 98.0), (2, 196.0)]
    assert series.metadata["task_ms"] == 10
    assert series.points[0].metadata["measured_task_ms"] == 10
    assert study.estimates["calibration python/spin"].n == 7
