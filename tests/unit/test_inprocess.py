"""The in-process study's pure parts: Go benchmark parsing, sizing, planning, interpreter lookup."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench.catalog import InProcessSpec
from bench.studies import pools as inprocess
from bench.studies.pools import (
    Config,
    GoBenchError,
    StudyParams,
    Variant,
    find_free_threaded,
    go_measurements,
    parse_go_bench,
    plan,
    pyperf_batch_seconds,
    rounds_for,
    tasks_for,
)

# Real output of `go test -bench BenchmarkPool … -count 2` on this machine.
GO_OUTPUT = """\
goos: linux
goarch: amd64
pkg: github.com/patternbench/patternbench/go/internal/workerpool
cpu: AMD EPYC
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=1-2         	       3	    692282 ns/op	      5778 tasks/s
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=1-2         	       3	    680301 ns/op	      5880 tasks/s
BenchmarkPool/kernel=spin/rounds=100000/size=0/tasks=4/workers=2-2         	       3	    535896 ns/op	      7464 tasks/s
BenchmarkPool/kernel=hash/rounds=2/size=1048576/tasks=4/workers=1-2        	       3	   6434175 ns/op	       621.7 tasks/s
PASS
ok  	github.com/patternbench/patternbench/go/internal/workerpool	0.070s
"""  # noqa: E501

SPEC = InProcessSpec(
    pyperf_script="scenarios/pyperf/bm_workerpool.py",
    go_package="./internal/workerpool",
    go_benchmark="BenchmarkPool",
    pools=["sync", "threads", "processes"],
)
PARAMS = StudyParams(
    scaling_ms=10.0,
    task_ms=[0.1, 1.0, 10.0],
    hash_sizes=[1 << 20],
    batch_s=0.25,
    pyperf_processes=2,
    pyperf_values=3,
    go_count=5,
)
NS = {"python/spin": 200.0, "python/hash/1048576": 5e5, "go/spin": 2.0, "go/hash/1048576": 5e5}


def test_go_bench_lines_are_parsed_with_their_fields_and_units() -> None:
    lines = parse_go_bench(GO_OUTPUT)
    assert len(lines) == 4
    first = lines[0]
    assert first.name == "BenchmarkPool"
    assert first.fields == {"kernel": "spin", "rounds": "100000", "size": "0", "tasks": "4",
                            "workers": "1"}  # fmt: skip
    assert first.procs == 2
    assert first.iterations == 3
    assert first.ns_per_op == 692282
    assert first.metrics["tasks/s"] == 5778
    assert lines[3].metrics["tasks/s"] == 621.7


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("BenchmarkPool/kernel=spin-2  3  12 ns/op  5", "expected `name N value unit"),
        ("BenchmarkPool/kernel=spin-2  3  abc ns/op", "'abc' (ns/op) is not a number"),
        ("BenchmarkPool/kernel=spin-2  3  12 B/op", "no ns/op"),
        ("BenchmarkPool/odd name-2  3  12 ns/op", "is not Name/k=v"),
    ],
)
def test_bad_go_bench_lines_are_named(line: str, expected: str) -> None:
    with pytest.raises(GoBenchError, match="line 2") as err:
        parse_go_bench(f"goos: linux\n{line}\n")
    assert expected in str(err.value)


def test_go_lines_group_into_one_measurement_per_configuration() -> None:
    config = Config("go", 1, Variant("spin", 0), 100000, 4, 0.5)
    other = Config("go", 2, Variant("spin", 0), 100000, 4, 0.5)
    missing = Config("go", 1, Variant("spin", 0), 7, 4, 0.5)
    found = go_measurements(parse_go_bench(GO_OUTPUT), [config, other, missing])
    assert [(m.workers, len(m.batch_seconds)) for m in found] == [(1, 2), (2, 1)]
    one = found[0]
    assert one.source == "go-bench"
    assert one.batch_seconds == [692282e-9, 680301e-9]
    assert one.throughput.median == pytest.approx(4 / ((692282e-9 + 680301e-9) / 2), rel=0.01)
    assert one.throughput.low <= one.throughput.median <= one.throughput.high


def test_a_batch_is_about_batch_s_of_one_worker_and_a_multiple_of_the_workers() -> None:
    assert tasks_for(1.0, 0.25, 2) == 250
    assert tasks_for(100.0, 0.25, 2) == 8  # at least 4 per worker
    assert tasks_for(0.3, 0.25, 4) % 4 == 0
    assert rounds_for(10.0, 200.0) == 50_000
    assert rounds_for(1e-9, 200.0) == 1


def test_the_plan_times_each_pool_once_per_worker_count_and_task() -> None:
    configs = plan(PARAMS, SPEC, [1, 2], NS, free_threaded=False)
    keys = [(c.implementation, c.workers, c.variant, c.task_ms) for c in configs]
    assert len(keys) == len(set(keys))
    impls = {c.implementation for c in configs}
    assert impls == {"python-sync", "python-threads", "python-processes", "go"}
    assert {c.workers for c in configs if c.implementation == "python-sync"} == {1}
    # Scaling: every pool at every worker count, for both kernels, at 10 ms.
    for variant in (Variant("spin", 0), Variant("hash", 1 << 20)):
        for impl, counts in (("python-threads", {1, 2}), ("python-processes", {1, 2}),
                             ("go", {1, 2})):  # fmt: skip
            found = {c.workers for c in configs if c.implementation == impl
                     and c.variant == variant and c.task_ms == 10.0}  # fmt: skip
            assert found == counts, (impl, variant)
    # Crossover: threads only at the full size (the GIL makes one thread the same as sync).
    small = [c for c in configs if c.task_ms == 0.1]
    assert {(c.implementation, c.workers) for c in small} == {
        ("python-sync", 1), ("python-threads", 2), ("python-processes", 1),
        ("python-processes", 2), ("go", 1), ("go", 2),
    }  # fmt: skip
    go_spin = next(c for c in small if c.implementation == "go")
    py_spin = next(c for c in small if c.implementation == "python-sync")
    assert go_spin.rounds == 100 * py_spin.rounds  # same time, 100 times cheaper rounds
    assert go_spin.tasks == py_spin.tasks


def test_a_free_threaded_interpreter_adds_its_thread_pool() -> None:
    configs = plan(PARAMS, SPEC, [1, 2], NS, free_threaded=True)
    ft = {(c.workers, c.task_ms) for c in configs if c.implementation == "python-threads-ft"}
    assert (1, 10.0) in ft
    assert (2, 0.1) in ft


def test_an_interpreter_with_the_gil_is_not_taken_for_a_free_threaded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(inprocess.FREE_THREADED_ENV, raising=False)
    (tmp_path / "python3.13t").symlink_to(sys.executable)
    found = find_free_threaded(path=str(tmp_path))
    assert not found.available
    assert "python3.13t" in found.note
    assert "is built with the GIL" in found.note


def test_no_free_threaded_interpreter_is_reported_as_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(inprocess.FREE_THREADED_ENV, raising=False)
    found = find_free_threaded(path=str(tmp_path))
    assert not found.available
    assert found.note.startswith("not available: looked for python3.14t")
    assert "none found" in found.note


def test_an_explicit_interpreter_that_does_not_run_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(inprocess.FREE_THREADED_ENV, str(tmp_path / "nope"))
    found = find_free_threaded()
    assert not found.available
    assert "does not run" in found.note
    assert os.environ[inprocess.FREE_THREADED_ENV] in found.note


def test_pyperf_values_are_read_and_a_foreign_file_is_named(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    runs = [{"metadata": {}, "warmups": [[1, 0.5]]}, {"values": [0.25, 0.26]}, {"values": [0.3]}]
    good.write_text(json.dumps({"benchmarks": [{"runs": runs}], "version": "1.0"}))
    assert pyperf_batch_seconds(good) == [0.25, 0.26, 0.3]
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmarks": []}')
    with pytest.raises(RuntimeError, match=r"bad\.json: not a pyperf result"):
        pyperf_batch_seconds(bad)
