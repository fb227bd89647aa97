"""The codec study for real, on the rpc pattern's suites: pytest-benchmark and `go test -bench`,
kept short (two small sizes and a small handler request, few rounds, one Go sample)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.models import Estimate, ImplementationResult, LoadPoint
from bench.studies.base import StudyContext
from bench.studies.codec import GO_LOG, PYTHON_JSON, CodecStudy
from bench.studies.codec_data import from_study
from bench.studies.codec_spec import CodecSpec
from bench.templates import render_table
from tests.integration.conftest import REPO
from tests.unit.conftest import make_run

pytestmark = pytest.mark.integration

#: The [studies.codec] table the rpc pattern's system.toml holds, less `kind` and `when`.
TABLE: dict[str, Any] = {
    "sizes": "{codec_sizes}",
    "min_rounds": "{codec_rounds}",
    "max_time_s": "{codec_max_time_s}",
    "go_count": "{codec_go_count}",
    "go_benchtime": "{codec_go_benchtime}",
    "handler_limit": "{limit}",
    "handler_features": "{features}",
    "pytest": {"script": "scenarios/pytest_benchmark/bm_codec.py",
               "args": ["--codec-sizes={{sizes}}", "--codec-handler={{handler}}"]},
    "go": {"package": "./internal/rpc/codec", "benchmark": "BenchmarkCodec",
           "args": ["-codec.sizes={{sizes}}", "-codec.handler={{handler}}"]},
}  # fmt: skip
SHORT: dict[str, Any] = {
    "limit": 5,
    "features": 4,
    "codec_sizes": "100,1024",
    "codec_rounds": 3,
    "codec_max_time_s": 0.02,
    "codec_go_count": 1,
    "codec_go_benchtime": "20ms",
}


def context(workdir: Path) -> StudyContext:
    return StudyContext(
        root=REPO,
        folder=REPO / "systems" / "rpc",
        params=SHORT,
        cpus=sorted(os.sched_getaffinity(0))[:2],
        workdir=workdir,
    )


def test_a_short_study_times_both_codecs_in_both_languages(tmp_path: Path) -> None:
    spec = CodecSpec.model_validate(render_table(TABLE, SHORT))
    workdir = tmp_path / "studies" / "codec"
    study = CodecStudy().run("codec", spec, context(workdir))

    assert study.errors == []  # every size in both languages, the same protobuf bytes in both
    r = from_study(study)
    found = {(m.language, m.codec, m.op, m.size) for m in r.measurements}
    for language in ("python", "go"):
        for codec in ("protobuf", "json"):
            for op in ("encode", "decode"):
                assert {(language, codec, op, s) for s in (100, 1024)} <= found
    assert ("python", "json-dict", "encode", 1024) in found
    for m in r.measurements:
        assert 0 < m.time_us.low <= m.time_us.median <= m.time_us.high
        assert m.proto_bytes <= m.size  # the most features that fit
        if m.codec == "protobuf":
            assert m.bytes == m.proto_bytes
        else:  # JSON writes floats as text and names every field
            assert m.bytes > 2 * m.proto_bytes
    assert (workdir / GO_LOG).read_text().count("BenchmarkCodec/size=") == 8

    # One call of each server's own work, at the run's request, in both languages and codecs:
    # the same answer, byte for byte, in each codec.
    handlers = {(h.language, h.codec): h for h in r.handlers}
    assert handlers.keys() == {(lang, codec) for lang in ("python", "go")
                               for codec in ("protobuf", "json")}  # fmt: skip
    assert study.estimates.keys() == {f"handler {lang}/{codec}" for lang, codec in handlers}
    for (language, codec), h in handlers.items():
        assert (h.limit, h.features) == (5, 4)
        assert 0 < h.time_us.low <= h.time_us.median <= h.time_us.high
        assert h.bytes == handlers["python" if language == "go" else "go", codec].bytes
    assert handlers["python", "json"].bytes > handlers["python", "protobuf"].bytes
    assert (workdir / GO_LOG).read_text().count("BenchmarkCodec/handler=recommend/limit=5/") == 2

    # The report sets them against a run's CPU per call.
    run = make_run(
        ImplementationResult(
            name="python-grpc", language="python", status="ok",
            labels={"transport": "grpc", "runtime": "python", "call": "unary"},
            points=[LoadPoint(target_rps=1000.0, trials=[], valid=True,
                              summary={"cpu_us_per_call": Estimate(median=850.0, low=840.0,
                                                                   high=860.0, n=3)})],
        )
    )  # fmt: skip
    (holds, *_) = CodecStudy().section(study, run, tmp_path).reading
    assert holds.startswith("- **What holds python-grpc back**: 850 µs of CPU per call at 1,000 ")
    assert holds.endswith("10,000 calls/s would need 9 cores.")

    # The suite's JSON is kept as pytest-benchmark wrote it, so its own tools open it.
    kept = workdir / PYTHON_JSON
    assert {"machine_info", "benchmarks", "version"} <= json.loads(kept.read_text()).keys()
    compare = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(kept)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert compare.returncode == 0, compare.stderr
    assert "test_codec[100-protobuf-encode]" in compare.stdout


def test_a_python_without_upb_is_refused_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    table = {k: v for k, v in TABLE.items() if k != "go"}
    spec = CodecSpec.model_validate(render_table(table, {**SHORT, "codec_sizes": "100"}))
    study = CodecStudy().run("codec", spec, context(tmp_path))

    assert study.series == []
    assert study.estimates == {}
    (error,) = study.errors
    assert error.startswith(f"pytest-benchmark: no {PYTHON_JSON} written: SKIPPED")
    assert "protobuf's 'python' backend is in use, not 'upb'" in error
