"""The pool study's pyperf side: reading a suite, finding a free-threaded CPython."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench.studies import pools_pyperf
from bench.studies.pinned import CommandError
from bench.studies.pools_pyperf import find_free_threaded, read_suite


def suite(path: Path) -> None:
    runs = [
        {"metadata": {"measured_task_ms": 9.8}, "warmups": [[1, 0.5]], "values": [0.25, 0.26]},
        {"metadata": {"measured_task_ms": 10.1}, "values": [0.3]},
        {"metadata": {"measured_task_ms": 10.4}, "values": [0.31]},
    ]
    bench = {"metadata": {"name": "spin-10ms-w2", "unit": "second", "loops": 1}, "runs": runs}
    path.write_text(json.dumps({"benchmarks": [bench], "metadata": {}, "version": "1.0"}))


def test_a_suite_gives_a_benchmarks_values_and_its_measured_task(tmp_path: Path) -> None:
    path = tmp_path / "python-threads.json"
    suite(path)
    values, measured = read_suite(path, "spin-10ms-w2")
    assert values == [0.25, 0.26, 0.3, 0.31]
    assert measured == 10.1  # the median over the worker processes
    with pytest.raises(CommandError, match=r"python-threads\.json: no benchmark 'spin-1ms-w1'"):
        read_suite(path, "spin-1ms-w1")


def test_an_interpreter_with_the_gil_is_not_taken_for_a_free_threaded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pools_pyperf.FREE_THREADED_ENV, raising=False)
    (tmp_path / "python3.13t").symlink_to(sys.executable)
    found = find_free_threaded(path=str(tmp_path))
    assert not found.available
    assert "python3.13t" in found.note
    assert "is built with the GIL" in found.note


def test_no_free_threaded_interpreter_is_reported_as_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pools_pyperf.FREE_THREADED_ENV, raising=False)
    found = find_free_threaded(path=str(tmp_path))
    assert not found.available
    assert found.note.startswith("not available: looked for python3.14t")
    assert "none found" in found.note


def test_an_explicit_interpreter_that_does_not_run_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pools_pyperf.FREE_THREADED_ENV, str(tmp_path / "nope"))
    found = find_free_threaded()
    assert not found.available
    assert "does not run" in found.note
    assert os.environ[pools_pyperf.FREE_THREADED_ENV] in found.note
