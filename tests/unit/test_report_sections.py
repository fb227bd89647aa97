"""A rendered report has the sections its pattern expects: the service figures for every run,
and the sections its studies hand in (the report itself knows no study)."""

from __future__ import annotations

from pathlib import Path

from bench.models import RunResult
from bench.report.sections import ReportSection
from bench.report.write import render
from bench.store import load_run, save_run
from bench.studies.base import StudyKind
from bench.studies.pools import PoolStudy
from tests.unit.conftest import make_run, measured
from tests.unit.test_pools_report import with_study
from tests.unit.test_results import SCHEMA_3

#: As bench/cli.py composes them.
STUDIES: dict[str, StudyKind] = {"pools": PoolStudy()}

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
