from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bench.models import RunResult
from bench.stats.percentiles import decode, value_ms
from bench.stats.summary import make_point
from bench.store import (
    ResultFileError,
    load_run,
    resolve_run,
    runs_dataframe,
    save_run,
    write_atomic,
)

#: A schema-3 result (with an in-process study) written by patternbench before schema 4.
SCHEMA_3 = Path(__file__).parent / "data" / "run_schema3.json"


def test_round_trip(tmp_path: Path, sample_run: RunResult) -> None:
    path = save_run(sample_run, tmp_path / "r1")
    assert load_run(path) == sample_run
    assert json.loads(path.read_text())["schema_version"] == 4


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_result_files_get_the_usual_mode_not_the_temp_files(
    tmp_path: Path, sample_run: RunResult, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        path = save_run(sample_run, tmp_path / "r1")
        write_atomic(tmp_path / "report.md", "# r1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == mode


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
            "schema_version: 1 is not supported (this patternbench reads 2, 3, 4)",
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


def test_a_version_3_file_is_upgraded_on_load() -> None:
    run = load_run(SCHEMA_3)
    assert run.schema_version == 4
    assert run.scenario.engine == "loadgen"
    assert run.scenario.engine_spec == {"locustfile": "scenarios/locust/fanout.py"}
    (study,) = run.studies
    assert (study.kind, study.name) == ("pools", "pools")
    assert study.metadata["scaling_ms"] == 10
    assert study.estimates["calibration go/spin"].median == 2.0
    roles = {r["name"]: r for r in study.metadata["implementations"]}
    assert roles["python-sync"]["pool"] == "inline"  # told by being measured on one worker only
    assert roles["python-processes"] == {"name": "python-processes", "pool": "processes",
                                         "language": "python", "baseline": "python-sync",
                                         "free_threaded": False}  # fmt: skip
    assert roles["go"]["baseline"] is None
    spin = next(s for s in study.series
                if s.implementation == "python-threads" and s.label == "spin, 10 ms")  # fmt: skip
    assert (spin.x.unit, spin.y.unit) == ("workers", "tasks/s")
    assert [(p.x, p.y.median) for p in spin.points] == [(1, 100.0), (2, 100.0)]
    assert spin.points[0].metadata["measured_task_ms"] is None


def test_p95_of_an_upgraded_file_comes_from_its_histograms() -> None:
    run = load_run(SCHEMA_3)
    point = run.implementation("go").points[0]
    for trial in point.trials:
        load = trial.load
        assert load.latency_ms.p95 == pytest.approx(value_ms(decode(load.histogram), 95.0))
        assert load.latency_ms.p95 is not None
        assert load.latency_ms.p90 <= load.latency_ms.p95 <= load.latency_ms.p99
        assert load.uncorrected_ms is not None
        assert load.uncorrected_ms.p95 is not None
        assert load.slip_ms is not None
        assert load.slip_ms.p95 is None  # no histogram of it was kept
    recomputed = make_point(point.target_rps, point.trials).summary["p95"]
    assert point.summary["p95"] == recomputed


def test_a_version_2_file_still_loads(tmp_path: Path) -> None:
    raw = json.loads(SCHEMA_3.read_text())
    raw["schema_version"] = 2
    del raw["inprocess"]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(raw))
    loaded = load_run(path)
    assert loaded.studies == []
    assert loaded.implementations == load_run(SCHEMA_3).implementations


def test_an_upgraded_file_saves_as_the_current_version(tmp_path: Path) -> None:
    run = load_run(SCHEMA_3)
    again = load_run(save_run(run, tmp_path / "again"))
    assert again == run


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
