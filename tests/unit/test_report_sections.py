"""A rendered report has the sections its pattern expects: the service figures for every run,
and the sections its studies hand in (the report itself knows no study)."""

from __future__ import annotations

from pathlib import Path

from bench.models import RunResult
from bench.report.sections import ReportSection
from bench.report.write import render
from bench.store import load_run, save_run
from bench.studies.base import StudyKind
from bench.studies.ceiling import CeilingStudy
from bench.studies.pools import PoolStudy
from tests.unit.conftest import make_run, measured
from tests.unit.test_pools_report import with_study
from tests.unit.test_results import SCHEMA_3

#: As bench/cli.py composes them.
STUDIES: dict[str, StudyKind] = {"pools": PoolStudy(), "ceiling": CeilingStudy()}

SERVICE = ["## Verdicts", "## Results", "## Throughput and latency", "## Latency by percentile"]
TAIL = ["## Scenario", "## Environment"]
#: The headings each pattern's report is expected to have, in order (runs from schema 3 kept no
#: per-call figures, so no "Cost per call").
FANOUT = [*SERVICE, "## Cost per call", *TAIL]
#: Implementations with labels: the reading contrasts them (rpc, without its codec study).
LABELLED = ["## Reading", *SERVICE, "## Cost per call", *TAIL]
POOLS = [
    "## Pools without a network",
    "### Throughput against workers",
    "### The overhead crossover by task size",
    *TAIL,
]
WORKERPOOL = ["## Reading", *SERVICE, "## Cost per call", *POOLS]
WORKERPOOL_SCHEMA_3 = ["## Reading", *SERVICE, *POOLS]
#: A served model: the latency split and batch sizes from the server's histograms, then the
#: ceiling study's sections.
INFERENCE = [
    "## Reading",
    *SERVICE,
    "## Cost per call",
    "## Where the server's time goes",
    "## Distribution of `inference_batch_size`",
    "## Raw ceiling: the model alone, per batch size",
    "## Served efficiency: the servers against the ceiling",
    "## Low-load penalty of batching",
    "## Throughput at the SLO",
    *TAIL,
]


def sections(run: RunResult, run_dir: Path) -> list[ReportSection]:
    return [STUDIES[s.kind].section(s, run, run_dir) for s in run.studies if s.kind in STUDIES]


def headings(run_json: Path) -> list[str]:
    run = load_run(run_json)
    md, _ = render(run, run_json.parent, sections(run, run_json.parent))
    return [line for line in md.read_text().splitlines() if line.startswith("## ")
            or line.startswith("### ")]  # fmt: skip


def test_a_fanout_like_run_has_the_service_sections_only(tmp_path: Path) -> None:
    run = make_run(
        measured("go", [1000 + i for i in range(200)], rates=(100.0, 200.0), knee=200.0),
        measured("python-asyncio", [2000 + i for i in range(200)], rates=(100.0, 200.0)),
        slo="p99<=50ms",
    )
    assert headings(save_run(run, tmp_path)) == FANOUT


def test_a_workerpool_like_run_adds_its_reading_and_pool_sections(tmp_path: Path) -> None:
    run = with_study(make_run(measured("go", [1000 + i for i in range(200)], rates=(100.0, 200.0))))
    assert headings(save_run(run, tmp_path)) == WORKERPOOL


def test_a_schema_3_workerpool_run_re_renders_with_the_same_sections(tmp_path: Path) -> None:
    copy = tmp_path / "run.json"
    copy.write_text(SCHEMA_3.read_text())
    assert headings(copy) == WORKERPOOL_SCHEMA_3


def test_a_run_of_labelled_implementations_opens_with_their_contrasts(tmp_path: Path) -> None:
    impls = [
        measured(name, [base + i for i in range(200)], rates=(100.0, 200.0)).model_copy(
            update={"labels": {"transport": transport, "runtime": "go"}}
        )
        for name, base, transport in (("go-grpc", 1000, "grpc"), ("go-rest", 1200, "rest"))
    ]
    assert headings(save_run(make_run(*impls), tmp_path)) == LABELLED


def test_an_inference_like_run_splits_the_latency_and_adds_the_ceiling(tmp_path: Path) -> None:
    from tests.unit.test_ceiling_study import run as ceiling_run
    from tests.unit.test_ceiling_study import study as ceiling_study

    run = ceiling_run()
    scenario = run.scenario.model_copy(update={
        "server_latency_metric": "inference_request_duration_seconds",
        "server_latency_parts": ["inference_queue_seconds", "inference_compute_seconds"],
        "server_histograms": ["inference_batch_size"],
    })  # fmt: skip
    impls = []
    for impl in run.implementations:
        points = []
        for p in impl.points:
            trials = []
            for t in p.trials:
                metrics = {**t.server_metrics, "inference_request_duration_seconds_sum": 0.01,
                           "inference_request_duration_seconds_count": 10.0,
                           "inference_queue_seconds_sum": 0.004,
                           "inference_queue_seconds_count": 10.0,
                           "inference_compute_seconds_sum": 0.006,
                           "inference_compute_seconds_count": 10.0}  # fmt: skip
                trials.append(t.model_copy(update={"server_metrics": metrics}))
            points.append(p.model_copy(update={"trials": trials}))
        impls.append(impl.model_copy(update={"points": points}))
    run = run.model_copy(update={"scenario": scenario, "implementations": impls,
                                 "studies": [ceiling_study()]})  # fmt: skip
    assert headings(save_run(run, tmp_path)) == INFERENCE


#: A proxy priced against the direct call, and a rate limiter checked at twice its limit.
EDGE = ["## Reading", *SERVICE, "## Cost per call", "## Added over direct",
        "## Admission against the configured limit", *TAIL]  # fmt: skip


def test_an_edge_like_run_prices_each_variant_and_checks_the_limit(tmp_path: Path) -> None:
    from tests.unit.test_report_pricing import limited

    direct = measured("direct", [1000 + i for i in range(200)], rates=(200.0,), trials=2)
    impls = [
        direct.model_copy(update={"labels": {"path": "direct", "feature": "none"}}),
        limited(400.0, 4000).model_copy(update={"labels": {"path": "edge", "feature": "limit"}}),
    ]
    run = make_run(*impls)
    run = run.model_copy(
        update={"scenario": run.scenario.model_copy(update={"baseline": "direct"})}
    )
    assert headings(save_run(run, tmp_path)) == EDGE
