"""What every study kind implements: run from its `[studies.<name>]` table, and report.

A pattern's system.toml names its studies, each with a kind and that kind's table:

    [studies.pools]
    kind = "pools"
    when = "{inprocess}"        # optional: a boolean parameter that switches it on
    scaling_ms = "{inprocess_scaling_ms}"
    ...

The catalog renders every string of the table with the run's parameters (`{param}`), and the
kind's `spec_model` checks the rest of the table (all but `kind` and `when`). After the service
sweep, with nothing else of the harness running, the runner calls the kind's `run`, which runs
the scripts and benchmarks the table names, passing the arguments written there, and returns a
generic `Study` (bench/models.py). For the report, bench/cli.py asks the same kind for its
`section` (a bench.report.sections.ReportSection) and hands it in: the kinds are a dict literal
there, and the report knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator

from bench.models import ParamValue, RunResult, Series, SeriesPoint, Study
from bench.report.sections import ReportSection


@dataclass(frozen=True, kw_only=True)
class StudyContext:
    """Where and with what a study runs."""

    root: Path
    """The repository root of the pattern (its worktree in the gate)."""
    folder: Path
    """systems/<pattern>."""
    params: Mapping[str, ParamValue]
    """The run's resolved parameters."""
    cpus: list[int]
    """The CPUs the study may use: the system's set; everything it starts is pinned to them."""
    workdir: Path
    """run_dir / "studies" / <name>: the files it leaves for a reader (pyperf suites …)."""
    say: Callable[[str], None] = field(default=lambda _: None)
    """Progress, one line at a time."""


class StudyKind(Protocol):
    """One kind of study (pools, batching, codecs …): cli.py maps its name to an instance."""

    spec_model: type[BaseModel]
    """Checks the `[studies.<name>]` table, less `kind` and `when`, once rendered."""

    def run(self, name: str, spec: BaseModel, ctx: StudyContext) -> Study:
        """Measure; a part that fails goes into Study.errors and the study goes on."""
        ...

    def section(self, study: Study, run: RunResult, run_dir: Path) -> ReportSection:
        """The study's reading and sections of the report, from the stored result alone."""
        ...


def add_point(
    series: dict[Any, Series], key: Any, point: SeriesPoint, first: Callable[[], Series]
) -> None:
    """Append `point` to the series at `key`, made by `first()` (without points) if new."""
    found = series.get(key) or first()
    series[key] = found.model_copy(update={"points": [*found.points, point]})


def _listed(value: object) -> object:
    """`"1,2,4"` (a rendered parameter) or one number as a list; a list stays one."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


def _distinct_positive(value: list[int]) -> list[int]:
    if any(size < 1 for size in value) or len(set(value)) != len(value):
        raise ValueError(f"must be distinct sizes of 1 or more, got {value}")
    return sorted(value)


#: A study table's list of sizes (batch sizes, message bytes …): a comma-separated parameter, one
#: number or a list; distinct, each at least 1, kept sorted.
Sizes = Annotated[list[int], BeforeValidator(_listed), AfterValidator(_distinct_positive)]
