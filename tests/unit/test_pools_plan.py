"""The pool study's table and plan: sizing, the configurations of both figures, their names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bench.studies.pools_plan import (
    Config,
    PoolSpec,
    Variant,
    plan,
    rounds_for,
    tasks_for,
)

TABLE = {
    "scaling_ms": 10.0,
    "task_ms": "0.1,1,10",  # a parameter's text, as the system.toml's placeholders render it
    "hash_sizes": "1048576",
    "batch_s": 0.25,
    "pyperf_processes": 2,
    "pyperf_values": 3,
    "go_count": 5,
    "pyperf": {"script": "scenarios/pyperf/bm_x.py"},
    "go": {"package": "./internal/x", "benchmark": "BenchmarkX", "args": ["-x.cases={cases}"]},
    "implementations": [
        {"name": "py-inline", "runner": "pyperf", "pool": "inline", "language": "python"},
        {"name": "py-threads", "runner": "pyperf", "pool": "threads", "language": "python",
         "baseline": "py-inline", "args": ["--kind", "threads"]},
        {"name": "py-threads-ft", "runner": "pyperf", "pool": "threads", "language": "python",
         "baseline": "py-inline", "free_threaded": True},
        {"name": "py-procs", "runner": "pyperf", "pool": "processes", "language": "python",
         "baseline": "py-inline"},
        {"name": "golang", "runner": "go", "pool": "goroutines", "language": "go"},
    ],
}  # fmt: skip
SPEC = PoolSpec.model_validate(TABLE)
NS = {"python/spin": 200.0, "python/hash/1048576": 5e5, "go/spin": 2.0, "go/hash/1048576": 5e5,
      "python-ft/spin": 250.0, "python-ft/hash/1048576": 5e5}  # fmt: skip
WITH_GIL = [i for i in SPEC.implementations if not i.free_threaded]


def test_the_table_takes_parameters_as_text() -> None:
    assert SPEC.task_ms == [0.1, 1.0, 10.0]
    assert SPEC.hash_sizes == [1 << 20]
    assert SPEC.tolerance == 0.10


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"implementations": [{**TABLE["implementations"][1], "baseline": "nope"}]},  # type: ignore[index]
         "py-threads: no baseline 'nope'"),
        ({"go": None}, r"golang runs on go, which has no \[go\] table"),
        ({"implementations": [TABLE["implementations"][0]] * 2}, "names repeat"),  # type: ignore[index]
        ({"scaling_ms": 0}, "greater than 0"),
    ],
)  # fmt: skip
def test_a_table_that_does_not_hold_together_is_refused(
    change: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        PoolSpec.model_validate({**TABLE, **change})


def test_a_batch_is_about_batch_s_of_one_worker_and_a_multiple_of_the_workers() -> None:
    assert tasks_for(1.0, 0.25, 2) == 250
    assert tasks_for(100.0, 0.25, 2) == 8  # at least 4 per worker
    assert tasks_for(0.3, 0.25, 4) % 4 == 0
    assert rounds_for(10.0, 200.0) == 50_000
    assert rounds_for(1e-9, 200.0) == 1


def test_configurations_are_named_for_a_pyperf_suite() -> None:
    assert Config("x", 2, Variant("spin", 0), 1, 8, 10.0).name == "spin-10ms-w2"
    assert Config("x", 1, Variant("hash", 1 << 20), 1, 8, 10.0).name == "hash-1MiB-10ms-w1"
    assert Config("x", 1, Variant("hash", 64), 1, 8, 0.1).name == "hash-64B-0.1ms-w1"


def test_the_plan_times_each_pool_once_per_worker_count_and_task() -> None:
    configs = plan(SPEC, WITH_GIL, [1, 2], NS)
    keys = [(c.implementation, c.workers, c.variant, c.task_ms) for c in configs]
    assert len(keys) == len(set(keys))
    assert {c.implementation for c in configs} == {"py-inline", "py-threads", "py-procs", "golang"}
    assert {c.workers for c in configs if c.implementation == "py-inline"} == {1}
    # Scaling: every pool at every worker count, for both kernels, at 10 ms.
    for variant in (Variant("spin", 0), Variant("hash", 1 << 20)):
        for impl in ("py-threads", "py-procs", "golang"):
            found = {c.workers for c in configs if c.implementation == impl
                     and c.variant == variant and c.task_ms == 10.0}  # fmt: skip
            assert found == {1, 2}, (impl, variant)
    # Crossover: threads only at the full size (the GIL makes one thread the inline case again).
    small = [c for c in configs if c.task_ms == 0.1]
    assert {(c.implementation, c.workers) for c in small} == {
        ("py-inline", 1), ("py-threads", 2), ("py-procs", 1), ("py-procs", 2),
        ("golang", 1), ("golang", 2),
    }  # fmt: skip
    go_spin = next(c for c in small if c.implementation == "golang")
    py_spin = next(c for c in small if c.implementation == "py-inline")
    assert go_spin.rounds == 100 * py_spin.rounds  # same time, 100 times cheaper rounds
    assert go_spin.tasks == py_spin.tasks


def test_a_free_threaded_pool_has_its_own_calibration() -> None:
    configs = plan(SPEC, SPEC.implementations, [1, 2], NS)
    ft = {(c.workers, c.task_ms): c.rounds for c in configs if c.implementation == "py-threads-ft"}
    assert (1, 10.0) in ft
    assert ft[(2, 0.1)] == rounds_for(0.1, 250.0)
