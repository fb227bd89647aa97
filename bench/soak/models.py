"""soak.json: what a soak campaign planned, injected and found, run by run, with its totals.

A run's counts are what the campaign checks after it (bench/soak/checks.py): processes left
alive, ports still bound, result files that do not parse or temporary files of an atomic write
left behind, a broken trial reported as valid, a Python traceback on the harness's stderr, and an
exit status that does not match the fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.soak.options import FaultKind

SOAK_SCHEMA_VERSION: Final = 1

Role = Literal["harness", "system", "support"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Model):
    """One planned fault: what, and when (in the run's start-up, or into one of its trials)."""

    run: int = Field(ge=0)
    kind: FaultKind
    phase: Literal["startup", "trial"] = Field(
        description="startup: offset_s after the run's logs folder appeared (builds, then the "
        "test vectors); trial: offset_s after the measured trial number `trial` began"
    )
    trial: int | None = Field(description="0-based, in the order the run starts its trials")
    offset_s: float = Field(ge=0.0)

    def describe(self) -> str:
        when = "startup" if self.phase == "startup" else f"trial {self.trial}"
        return f"{self.kind} at {when} +{self.offset_s:.2f} s"


class TrialRef(_Model):
    """A measured trial, as its folder names it: logs/<implementation>/rate-<rate>-trial-<index>."""

    implementation: str
    rate: str = Field(description='the rate as the folder writes it ("500"), or "closed"')
    index: int


class Target(_Model):
    """The process a fault was sent to."""

    role: Role
    name: str = Field(description="patternbench, the implementation's or the support's name")
    pid: int
    command: str


class Injection(_Model):
    fired: bool
    at: datetime | None = None
    after_start_s: float | None = Field(default=None, description="since the harness started")
    trial: TrialRef | None = Field(default=None, description="the measured trial then running")
    target: Target | None = None
    note: str | None = Field(default=None, description="why it did not fire, or a detail")


class Leftover(_Model):
    """A process of the run still alive after the settle time (then killed by the campaign)."""

    pid: int
    command: str
    found_by: Literal["descendant", "marker"]


class Counts(_Model):
    faults: int = 0
    orphans: int = 0
    held_ports: int = 0
    corrupt_files: int = 0
    broken_called_valid: int = 0
    tracebacks: int = 0
    bad_exits: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{k: getattr(self, k) + getattr(other, k) for k in Counts.model_fields})

    def problems(self) -> int:
        """Everything that should be zero (every count but the faults)."""
        return sum(getattr(self, k) for k in Counts.model_fields if k != "faults")

    def line(self) -> str:
        return (
            f"soak: {self.faults} faults, {self.orphans} orphans, {self.held_ports} held ports, "
            f"{self.corrupt_files} corrupt files, {self.broken_called_valid} broken trials "
            f"called valid, {self.tracebacks} tracebacks, {self.bad_exits} bad exits"
        )


class RunRecord(_Model):
    """One `patternbench run` with its fault, and what the campaign found after it."""

    fault: Fault
    port_offset: int
    runs_dir: str
    injection: Injection
    exit_code: int | None = Field(description="negative: killed by that signal")
    timed_out: bool = False
    duration_s: float
    orphans: list[Leftover] = []
    held_ports: list[int] = []
    corrupt_files: list[str] = Field(default=[], description="path: what is wrong with it")
    verdict: str | None = Field(
        default=None, description="for a killed system or support: what the result says of it"
    )
    broken_called_valid: bool = False
    traceback: bool = False
    bad_exit: str | None = Field(default=None, description="why the exit status is wrong")

    def counts(self) -> Counts:
        return Counts(
            faults=int(self.injection.fired),
            orphans=len(self.orphans),
            held_ports=len(self.held_ports),
            corrupt_files=len(self.corrupt_files),
            broken_called_valid=int(self.broken_called_valid),
            tracebacks=int(self.traceback),
            bad_exits=int(self.bad_exit is not None),
        )


def total(runs: list[RunRecord]) -> Counts:
    out = Counts()
    for run in runs:
        out = out + run.counts()
    return out


class SoakResult(_Model):
    schema_version: Literal[1] = SOAK_SCHEMA_VERSION
    started_at: datetime
    finished_at: datetime
    pattern: str
    seed: int
    runs_asked: int
    budget_min: float | None
    stopped: str | None = Field(
        default=None, description="why fewer runs than asked were made (budget, interrupted)"
    )
    settle_s: float
    harness_args: list[str] = Field(description="the arguments every run had besides its own")
    runs: list[RunRecord]
    totals: Counts = Field(description="the runs' counts added up")

    @model_validator(mode="after")
    def _totals_add_up(self) -> SoakResult:
        if self.totals != total(self.runs):
            raise ValueError(f"totals {self.totals} are not the sum of the runs' counts")
        return self

    def not_fired(self) -> int:
        return sum(not run.injection.fired for run in self.runs)
