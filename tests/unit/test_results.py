from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.models import RunResult
from bench.store import (
    ResultFileError,
    load_run,
    resolve_run,
    runs_dataframe,
    save_run,
    write_atomic,
)


def test_round_trip(tmp_path: Path, sample_run: RunResult) -> None:
    path = save_run(sample_run, tmp_path / "r1")
    assert load_run(path) == sample_run
    assert json.loads(path.read_text())["schema_version"] == 3


def test_atomic_write_leaves_no_temp_file_behind(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udcff")  # a lone surrogate cannot be encoded
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a patternbench result"),
        ('{"schema_version": 99}', "schema_version: 99 is not supported"),
        (
            '{"schema_version": 1}',
            "schema_version: 1 is not supported (this patternbench reads 2, 3)",
        ),
        ('{"run_id": "x"}', "schema_version: None is not supported"),
    ],
)
def test_corrupt_or_foreign_files_get_one_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(ResultFileError) as err:
        load_run(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_version_2_file_still_loads(tmp_path: Path, sample_run: RunResult) -> None:
    raw = json.loads(sample_run.model_dump_json())
    raw["schema_version"] = 2
    del raw["inprocess"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(raw))
    loaded = load_run(path)
    assert loaded.inprocess is None
    assert loaded.implementations == sample_run.implementations


def test_a_missing_field_is_named(tmp_path: Path, sample_run: RunResult) -> None:
    raw = json.loads(sample_run.model_dump_json())
    del raw["implementations"][0]["points"][0]["trials"][1]["load"]["latency_ms"]["p99"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(raw))
    field = r"implementations\.0\.points\.0\.trials\.1\.load\.latency_ms\.p99: Field required"
    with pytest.raises(ResultFileError, match=field):
        load_run(path)


def test_resolve_run_by_id_folder_or_file(tmp_path: Path, sample_run: RunResult) -> None:
    path = save_run(sample_run, tmp_path / "r1")
    assert resolve_run("r1", tmp_path) == path
    assert resolve_run(str(tmp_path / "r1"), tmp_path) == path
    assert resolve_run(str(path), tmp_path) == path
    with pytest.raises(ResultFileError, match="nope: no such run"):
        resolve_run("nope", tmp_path)


def test_dataframe_has_a_row_per_implementation_and_point(
    tmp_path: Path, sample_run: RunResult
) -> None:
    save_run(sample_run, tmp_path / "r1")
    frame = runs_dataframe(tmp_path)
    assert list(frame["implementation"]) == ["go", "python-asyncio"]
    go = frame[frame["implementation"] == "go"].iloc[0]
    assert go["p50_ms"] == pytest.approx(1.515, rel=0.01)  # median of the three trials
    assert go["throughput_rps"] == pytest.approx(100.0)
    assert go["trials"] == 3
    assert frame[frame["implementation"] == "python-asyncio"].iloc[0]["status"] == "failed"
