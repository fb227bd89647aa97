"""The ceiling study for real, on the inference pattern's script and model, on the CPU: two batch
sizes, timed briefly, through the kind's own run, then into the report's section."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.models import ImplementationResult
from bench.stats.summary import make_point
from bench.studies.base import StudyContext
from bench.studies.ceiling import OUTPUT, CeilingStudy
from bench.studies.ceiling_data import from_study
from bench.studies.ceiling_spec import CeilingSpec
from bench.templates import render_table
from systems.inference.model import CACHE_ENV
from tests.integration.conftest import REPO
from tests.unit.conftest import make_load, make_run, make_trial

pytestmark = pytest.mark.integration

#: The [studies.ceiling] table of the inference pattern's system.toml, less `kind` and `when`.
TABLE: dict[str, Any] = {
    "script": "scenarios/torch_benchmark/bm_ceiling.py",
    "args": ["--model", "{model}", "--seq-len", "{seq_len}", "--device", "{device}",
             "--threads", "{threads}"],
    "batch_sizes": "{ceiling_batch_sizes}",
    "min_run_time_s": "{ceiling_min_run_time_s}",
    "batch_metric": "inference_batch_size",
    "latency_metric": "inference_request_duration_seconds",
    "baseline": "python-unbatched",
    "max_queue_delay_us": "{max_queue_delay_us}",
    "samples_per_request": "{samples_per_request}",
}  # fmt: skip
SHORT = {"model": "mlp", "seq_len": "64", "device": "cpu", "threads": "1",
         "ceiling_batch_sizes": "1,8", "ceiling_min_run_time_s": "0.05",
         "max_queue_delay_us": "5000", "samples_per_request": "1"}  # fmt: skip


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The script makes the weights in a folder of the test's, not the user's cache."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "models"))


def context(workdir: Path) -> StudyContext:
    return StudyContext(
        root=REPO,
        folder=REPO / "systems" / "inference",
        params=SHORT,
        cpus=sorted(os.sched_getaffinity(0))[:1],
        workdir=workdir,
    )


def test_a_short_study_times_the_model_per_batch_size(tmp_path: Path) -> None:
    spec = CeilingSpec.model_validate(render_table(TABLE, SHORT))
    workdir = tmp_path / "studies" / "ceiling"
    said: list[str] = []
    ctx = context(workdir)
    study = CeilingStudy().run("ceiling", spec, replace(ctx, say=said.append))

    assert study.errors == []
    assert said == ["raw ceiling: batch sizes 1, 8, 0.05 s each"]
    c = from_study(study)
    assert [p.batch for p in c.points] == [1, 8]
    for p in c.points:
        assert 0 < p.rate.low <= p.rate.median <= p.rate.high
        assert p.s_per_batch > 0
    assert c.facts["device"] == "cpu"
    assert (c.facts["threads"], c.facts["model"], c.cpus) == (1, "mlp", ctx.cpus)
    kept = json.loads((workdir / OUTPUT).read_text())
    assert [p["batch"] for p in kept["points"]] == [1, 8]

    # Into the report, against a run whose batched server gathered 4 samples per forward pass.
    trials = []
    for i in range(2):
        t = make_trial(i, make_load([3000] * 100, target=50.0))
        metrics = {"inference_batch_size_sum": 500.0, "inference_batch_size_count": 125.0}
        trials.append(t.model_copy(update={"server_metrics": metrics}))
    batched = ImplementationResult(name="python-dynamic", language="python", status="ok",
                                   points=[make_point(50.0, trials)], knee_rps=50.0)  # fmt: skip
    part = CeilingStudy().section(study, make_run(batched), tmp_path)
    text = "\n".join(part.lines)
    assert "| 8 |" in text
    assert "The run has no `python-unbatched`, the baseline without batching." in text
    (efficiency,) = part.reading
    assert efficiency.startswith("- **python-dynamic's efficiency**: at its knee, 50 req/s, it "
                                 "computed 50 samples/s at a mean batch of 4")  # fmt: skip


def test_a_script_that_fails_is_one_error_and_no_series(tmp_path: Path) -> None:
    spec = CeilingSpec.model_validate(render_table(TABLE, {**SHORT, "device": "tpu"}))
    study = CeilingStudy().run("ceiling", spec, context(tmp_path))

    assert study.series == []
    (error,) = study.errors
    assert error.startswith("bm_ceiling.py: exit 2: ")
    assert "'tpu' is not auto, cpu, cuda or cuda:N" in error
