"""The ceiling study's pure parts: its table, the script's output read and stored, the ceiling
between the batch sizes measured, the servers' efficiency against it, the low-load penalty, the
throughput at the SLO, and the report's section on a synthetic run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bench.models import Estimate, ImplementationResult, RunResult, SloSearch, Study
from bench.stats.summary import make_point
from bench.studies import ceiling_served as served
from bench.studies.ceiling import CeilingStudy, command, timeout_s
from bench.studies.ceiling_data import (
    Ceiling,
    CeilingDataError,
    CeilingPoint,
    from_study,
    interpolate,
    missing,
    read_output,
    to_ceiling,
    to_study,
)
from bench.studies.ceiling_report import FIGURE_PNG
from bench.studies.ceiling_spec import CeilingSpec
from tests.unit.conftest import make_load, make_run, make_trial

#: The inference pattern's [studies.ceiling] table, rendered, less `kind` and `when`.
TABLE: dict[str, Any] = {
    "script": "scenarios/torch_benchmark/bm_ceiling.py",
    "args": ["--model", "mlp", "--seq-len", "64", "--device", "auto", "--threads", "0"],
    "batch_sizes": "8,1,64",
    "min_run_time_s": "0.3",
    "batch_metric": "inference_batch_size",
    "latency_metric": "inference_request_duration_seconds",
    "baseline": "python-unbatched",
    "max_queue_delay_us": "5000",
    "samples_per_request": "1",
}
METRIC = TABLE["batch_metric"]
INFO = 'inference_device_info{cuda="",device="cpu",model="mlp",policy="dynamic",torch="2.15"}'


def output(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "device": "cpu", "torch": "2.15.0", "cuda": None, "threads": 1, "model": "mlp",
        "seq_len": 64, "flops_per_sample": 3.2e6,
        "points": [
            {"batch": 8, "samples_per_s": [7900.0, 8000.0, 8100.0], "median_s_per_batch": 1e-3},
            {"batch": 1, "samples_per_s": [1900.0, 2000.0, 2100.0], "median_s_per_batch": 5e-4},
            {"batch": 64, "samples_per_s": [15800.0, 16000.0, 16300.0],
             "median_s_per_batch": 4e-3},
        ],
    }  # fmt: skip
    return {**doc, **change}


def ceiling() -> Ceiling:
    return to_ceiling(read_output(json.dumps(output())), [1], "ceiling.json")


def study() -> Study:
    spec = CeilingSpec.model_validate(TABLE)
    return to_study("ceiling", spec.model_dump(mode="json"), ceiling())


def impl(
    name: str,
    points: dict[float, list[tuple[int, float, float]]],
    *,
    knee: float | None = None,
    search: SloSearch | None = None,
) -> ImplementationResult:
    """Per rate, per trial: (p50 µs, samples, forward passes) in a 10 s window."""
    built = []
    for rate, trials in points.items():
        found = []
        for i, (p50_us, samples, passes) in enumerate(trials):
            t = make_trial(i, make_load([p50_us] * 200, target=rate))
            metrics = {f"{METRIC}_sum": samples, f"{METRIC}_count": passes,
                       f'{METRIC}_bucket{{le="+Inf"}}': passes, INFO: 1.0}  # fmt: skip
            found.append(t.model_copy(update={"server_metrics": metrics}))
        built.append(make_point(rate, found))
    return ImplementationResult(name=name, language="python", status="ok", points=built,
                                knee_rps=knee, search=search)  # fmt: skip


def run(slo: str | None = "p99 < 50ms") -> RunResult:
    """The baseline runs one forward pass per request; the batcher gathers 4, then 32."""
    base = impl("python-unbatched", {
        100.0: [(2000, 1000, 1000), (2100, 1000, 1000), (2050, 1000, 1000)],
        1000.0: [(9000, 10000, 10000), (9500, 10000, 10000), (9100, 10000, 10000)],
    }, knee=100.0)  # fmt: skip
    batched = impl("python-dynamic", {
        100.0: [(5000, 1000, 250), (5300, 1000, 250), (5100, 1000, 250)],
        1000.0: [(6000, 10000, 320), (6100, 10000, 310), (6050, 10000, 312)],
    }, knee=1000.0)  # fmt: skip
    return make_run(base, batched, slo=slo)


# ---- the table and the command --------------------------------------------------------------


def test_the_table_reads_numbers_from_rendered_strings() -> None:
    spec = CeilingSpec.model_validate(TABLE)
    assert spec.batch_sizes == [1, 8, 64]
    assert (spec.min_run_time_s, spec.max_queue_delay_ms, spec.samples_per_request) == (0.3, 5, 1)
    assert spec.info_metric is None
    assert CeilingSpec.model_validate({**TABLE, "batch_sizes": 16}).batch_sizes == [16]
    assert CeilingSpec.model_validate({**TABLE, "latency_metric": ""}).latency_metric is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"batch_sizes": "1,0"}, "distinct sizes of 1 or more"),
        ({"batch_sizes": "4,4"}, "distinct sizes of 1 or more"),
        ({"batch_sizes": ""}, "at least 1 item"),
        ({"min_run_time_s": "0"}, "greater than 0"),
        ({"samples_per_request": "0"}, "greater than or equal to 1"),
        ({"max_queue_delay_us": "soon"}, "valid number"),
        ({"batches": "1"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_table_is_refused_with_its_reason(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        CeilingSpec.model_validate({**TABLE, **change})


def test_the_command_passes_the_tables_args_then_the_sizes_and_time(tmp_path: Path) -> None:
    spec = CeilingSpec.model_validate(TABLE)
    got = command(spec, tmp_path)
    assert got[1:3] == [str(tmp_path / TABLE["script"]), "--model"]
    assert got[-4:] == ["--batch-sizes", "1,8,64", "--min-run-time", "0.3"]
    assert timeout_s(spec) > timeout_s(spec.model_copy(update={"batch_sizes": [1]}))


# ---- the script's output and the stored layout ----------------------------------------------


def test_the_output_is_read_after_whatever_a_library_printed_before() -> None:
    got = read_output("a warning\n" + json.dumps(output()) + "\n")
    assert [p.batch for p in got.points] == [8, 1, 64]
    c = to_ceiling(got, [1], "ceiling.json")
    assert [p.batch for p in c.points] == [1, 8, 64]
    assert c.points[0].rate == Estimate(median=2000.0, low=c.points[0].rate.low,
                                        high=c.points[0].rate.high, n=3)  # fmt: skip
    assert c.points[0].rate.low <= 2000.0 <= c.points[0].rate.high
    assert c.facts["device"] == "cpu"
    assert missing(c, [1, 8, 64, 128]) == ["no figure for batch sizes 128"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Traceback …", "printed no JSON object"),
        ("{not json", "is not a ceiling"),
        (json.dumps(output(points=[])), "points: List should have at least 1 item"),
        (json.dumps(output(threads=0)), "threads: Input should be greater than or equal to 1"),
    ],
)
def test_output_that_is_no_ceiling_is_one_line(text: str, expected: str) -> None:
    with pytest.raises(CeilingDataError, match=expected):
        read_output(text)


def test_a_study_round_trips_through_its_stored_layout() -> None:
    s = study()
    assert s.kind == "ceiling"
    assert [(p.x, p.metadata["s_per_batch"]) for p in s.series[0].points] == [
        (1, 5e-4), (8, 1e-3), (64, 4e-3)
    ]  # fmt: skip
    back = from_study(Study.model_validate_json(s.model_dump_json()))
    assert back.points == ceiling().points
    assert back.facts == ceiling().facts
    assert (back.cpus, back.file) == ([1], "ceiling.json")


def test_the_ceiling_is_log_linear_between_sizes_and_clamped_outside() -> None:
    points = [(1.0, 100.0), (4.0, 300.0), (16.0, 500.0)]
    assert interpolate(points, 4) == 300.0
    assert interpolate(points, 2) == pytest.approx(200.0)  # halfway in log 1 … 4
    assert interpolate(points, 8) == pytest.approx(400.0)
    assert (interpolate(points, 0.5), interpolate(points, 64)) == (100.0, 500.0)
    assert math.isnan(interpolate([], 2))


# ---- the run against the ceiling ------------------------------------------------------------


def test_histogram_parts_add_up_over_label_sets() -> None:
    metrics = {"m_sum": 1.0, 'm_sum{model="a"}': 2.0, "m_count": 3.0, "m_summary": 9.0}
    assert served.histogram_part(metrics, "m", "sum") == 3.0
    assert served.histogram_part(metrics, "m", "count") == 3.0
    assert served.histogram_part(metrics, "other", "sum") is None


def test_efficiency_is_served_samples_over_the_ceiling_at_the_mean_batch() -> None:
    found = served.efficiencies(ceiling(), run(), METRIC)
    e = served.at_rate(found, "python-dynamic", 100.0)
    assert e is not None
    assert e.served.median == pytest.approx(100.0)  # 1,000 samples in a 10 s window
    assert e.mean_batch.median == pytest.approx(4.0)
    top = 2000.0 + (math.log(4) / math.log(8)) * 6000.0  # log-linear, batch 1 … 8
    assert e.ceiling == pytest.approx(top)
    assert e.efficiency.median == pytest.approx(100.0 / top)
    base = served.at_rate(found, "python-unbatched", 1000.0)
    assert base is not None
    assert (base.mean_batch.median, base.efficiency.median) == (1.0, 0.5)


def test_the_penalty_pairs_trials_by_index_and_falls_back_to_medians() -> None:
    r = run()
    p = served.penalty(r.implementations[1], r.implementations[0])
    assert p is not None
    assert p.rate == 100.0  # the lowest rate both measured
    assert p.paired
    assert p.difference.median == pytest.approx(3.05, abs=0.02)  # 5.1 − 2.05 ms
    assert p.difference.low <= p.difference.median <= p.difference.high
    alone = impl("other", {100.0: [(5000, 1.0, 1.0)] * 3})
    shifted = alone.model_copy(update={"points": [alone.points[0].model_copy(update={
        "trials": [t.model_copy(update={"index": t.index + 10}) for t in alone.points[0].trials]
    })]})  # fmt: skip
    q = served.penalty(shifted, r.implementations[0])
    assert q is not None
    assert not q.paired
    assert q.difference.median == pytest.approx(q.p50.median - q.baseline_p50.median)
    assert served.penalty(impl("x", {7.0: [(1, 1.0, 1.0)]}), r.implementations[0]) is None


def test_the_slo_rate_is_a_lower_bound_at_the_highest_rate_swept() -> None:
    r = run()
    base, batched = (served.at_slo(i, 4) for i in r.implementations)
    assert (base.rate, base.samples_s, base.lower_bound) == (100.0, 400.0, False)
    assert (batched.rate, batched.lower_bound) == (1000.0, True)
    assert served.ratio_bound(batched, base)("10×") == "≥ 10×"
    search = SloSearch(slo="p99 < 50ms", best_rate=2500.0, first_failing_rate=3000.0,
                       limited_by_generator=False, reason="bracketed")  # fmt: skip
    found = served.at_slo(r.implementations[1].model_copy(update={"search": search}), 1)
    assert (found.rate, found.lower_bound, found.searched) == (2500.0, False, True)


# ---- the section ----------------------------------------------------------------------------


def test_the_section_reads_the_ratio_the_efficiency_and_the_penalty(tmp_path: Path) -> None:
    part = CeilingStudy().section(study(), run(), tmp_path)
    text = "\n".join(part.lines)
    for heading in ("## Raw ceiling", "## Served efficiency", "## Low-load penalty",
                    "## Throughput at the SLO"):  # fmt: skip
        assert heading in text
    assert "| 64 | 16,000 (15,800 to 16,300) | 4.00 | 8.00 |" in text
    assert "device cpu, torch 2.15.0, CUDA none, CPU threads 1" in text
    assert (tmp_path / FIGURE_PNG).is_file()
    ratio, eff_base, eff_batched, penalty = part.reading
    assert ratio.startswith(
        "- **Batching at the SLO: python-dynamic serves ≥ 10.00× the samples/s of "
        "python-unbatched** (1,000 against 100 samples/s"
    )
    assert "against a raw ratio of 8.00× (the ceiling at batch 64, 16,000 samples/s" in ratio
    assert "a lower bound" in ratio
    assert eff_base.startswith("- **python-unbatched's efficiency**: at its knee, 100 req/s, it")
    assert "at the highest rate measured, 1,000 req/s, 1,000 samples/s at a mean batch of 1" in (
        eff_base
    )
    assert "at its knee, 1,000 req/s, it computed 1,000 samples/s at a mean batch of 32" in (
        eff_batched
    )
    assert "highest rate measured" not in eff_batched  # its knee is the highest rate
    assert penalty.startswith(
        "- **Low-load penalty of python-dynamic**: at 100 req/s its p50 is +3"
    )
    assert "beyond the 5 ms a request may wait" not in penalty
    assert penalty.endswith("within the 5 ms a request may wait for a batch.")


def test_what_the_run_lacks_is_said_not_raised(tmp_path: Path) -> None:
    r = run(slo=None)
    bare = r.model_copy(update={"implementations": [
        i.model_copy(update={"points": [p.model_copy(update={"trials": [
            t.model_copy(update={"server_metrics": {}}) for t in p.trials]}) for p in i.points]})
        for i in r.implementations if i.name != "python-unbatched"
    ]})  # fmt: skip
    part = CeilingStudy().section(study(), bare, tmp_path)
    text = "\n".join(part.lines)
    assert "No valid trial of the run has the servers' `inference_batch_size`" in text
    assert "The run has no `python-unbatched`, the baseline without batching." in text
    assert "The run had no SLO" in text
    assert part.reading == []

    failed = to_study("ceiling", study().spec, Ceiling(points=[], errors=["bm_ceiling.py: boom"]))
    part = CeilingStudy().section(failed, make_run(), tmp_path)
    text = "\n".join(part.lines)
    assert "No raw ceiling was measured." in text
    assert "- bm_ceiling.py: boom" in text
    assert "Without a raw ceiling there is nothing to set the servers against." in text


def test_a_server_on_another_device_is_flagged(tmp_path: Path) -> None:
    spec = {**study().spec, "info_metric": "inference_device_info"}
    s = study().model_copy(update={"spec": spec})
    cuda = s.model_copy(update={"metadata": {**s.metadata, "device": "cuda:0 (NVIDIA H200)"}})
    text = "\n".join(CeilingStudy().section(cuda, run(), tmp_path).lines)
    assert "The servers said: python-unbatched: device cpu, model mlp, policy dynamic" in text
    assert "ran on another device than the ceiling's (cuda:0 (NVIDIA H200))" in text
    text = "\n".join(CeilingStudy().section(s, run(), tmp_path).lines)
    assert "another device" not in text


def test_a_point_keeps_its_blocks_in_metadata() -> None:
    p = CeilingPoint(batch=1, rate=Estimate(median=1, low=1, high=1, n=1), s_per_batch=1.0)
    c = Ceiling(points=[p])
    assert to_study("c", {}, c).series[0].points[0].metadata == {"s_per_batch": 1.0, "blocks": 1}
