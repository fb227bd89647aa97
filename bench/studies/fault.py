"""The fault study (kind "fault"): a fault injected under load, and what the system kept.

A pattern names a checking script and its targets in its `[studies.<name>]` table:

    [studies.restart]
    kind = "fault"
    when = "{restart_check}"
    script = "systems/<pattern>/restart_check.py"
    args = ["--rate", "{restart_rate}", ...]
    title = "A restart under writes"
    [studies.restart.targets]
    python = ["{{python}}", "-m", "systems.<pattern>.service", "--listen", "127.0.0.1:{{port}}", …]

The kind runs the script once per target, pinned to the study's CPUs with nothing else of the
harness running, as `python SCRIPT --name TARGET --command JSON --logs DIR *args`; the script
starts what it needs, injects its fault, checks, and prints one JSON object:

    {"target": "...", "fault": "what was done",
     "measures": {"acknowledged": 812, "outage_s": 1.4, "error_kinds": {"503": 40}, ...},
     "checks": {"lost_orders": 0, "never_restarted": true, ...}}

A check passes when it is 0 (a count of what must not happen) or true. The study keeps each
target's object in its metadata and the numeric measures as estimates (`<target>.<measure>`,
one run: n = 1). The report gives a table of the measures and a verdict per target; a failed
check, or a target whose script failed, is a finding at the top of the report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bench.models import Estimate, RunResult, Study
from bench.report.sections import ReportSection
from bench.studies.base import StudyContext
from bench.studies.pinned import CommandError, Pinned

KIND = "fault"
#: Seconds a target's check may take: start-up, the load, the drain, the audit.
TIMEOUT_S = 180.0


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    script: str = Field(description="the checking script, relative to the repository root")
    args: list[str] = Field(default=[], description="given to the script unread")
    title: str = Field(default="A fault under load", description="the report section's title")
    targets: dict[str, list[str]] = Field(
        min_length=1,
        description="each target's command, its own placeholders ({port} …) left to the script",
    )


def passed(value: object) -> bool:
    return value is True or (type(value) in (int, float) and value == 0)


class FaultStudy:
    """The fault study kind (bench/studies/base.py's StudyKind)."""

    spec_model: type[BaseModel] = FaultSpec

    def run(self, name: str, spec: BaseModel, ctx: StudyContext) -> Study:
        assert isinstance(spec, FaultSpec)
        pinned = Pinned(root=ctx.root, cpus=list(ctx.cpus))
        targets: dict[str, Any] = {}
        estimates: dict[str, Estimate] = {}
        errors: list[str] = []
        for target, command in spec.targets.items():
            ctx.say(f"{target}: {spec.title.lower()}")
            logs = ctx.workdir / target
            logs.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, str(ctx.root / spec.script), "--name", target,
                   "--command", json.dumps(command), "--logs", str(logs), *spec.args]  # fmt: skip
            try:
                text = pinned.run(cmd, ctx.root, TIMEOUT_S)
                found = json.loads(text.strip().splitlines()[-1])
                if not isinstance(found, dict) or not isinstance(found.get("checks"), dict):
                    raise ValueError("no checks in its output")
            except (CommandError, ValueError, IndexError, OSError) as e:
                errors.append(f"{target}: {Path(spec.script).name}: {e}")
                continue
            (logs / "result.json").write_text(json.dumps(found, indent=2), encoding="utf-8")
            targets[target] = found
            for key, value in (found.get("measures") or {}).items():
                if type(value) in (int, float):
                    v = float(value)
                    estimates[f"{target}.{key}"] = Estimate(median=v, low=v, high=v, n=1)
        return Study(kind=KIND, name=name, spec=spec.model_dump(mode="json"),
                     estimates=estimates, errors=errors, metadata={"targets": targets})  # fmt: skip

    def section(self, study: Study, run: RunResult, run_dir: Path) -> ReportSection:
        return section(study)


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "none"
    return f"{value:,}" if isinstance(value, int) else str(value)


def section(study: Study) -> ReportSection:
    title = str(study.spec.get("title") or "A fault under load")
    targets: dict[str, Any] = study.metadata.get("targets") or {}
    lines = [f"## {title}", ""]
    reading: list[str] = []
    if targets:
        first = next(iter(targets.values()))
        if first.get("fault"):
            lines += [f"The fault: {first['fault']}.", ""]
        names = list(targets)
        measures = list(dict.fromkeys(k for t in targets.values() for k in t.get("measures", {})))
        checks = list(dict.fromkeys(k for t in targets.values() for k in t.get("checks", {})))
        lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key in measures:
            cells = [_value(targets[n].get("measures", {}).get(key)) for n in names]
            lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(cells) + " |")
        for key in checks:
            cells = []
            for n in names:
                value = targets[n].get("checks", {}).get(key)
                cells.append(f"{_value(value)} {'✓' if passed(value) else '**✗**'}")
            lines.append(f"| **{key.replace('_', ' ')}** | " + " | ".join(cells) + " |")
        lines += ["", "Checks (bold) pass at 0, or yes; measures are one run's.", ""]
        for n, found in targets.items():
            failed = [k for k, v in found.get("checks", {}).items() if not passed(v)]
            if failed:
                reading.append(f"- **{title}: {n} failed** {', '.join(failed)}.")
        survived = [n for n, f in targets.items()
                    if all(passed(v) for v in f.get("checks", {}).values())]  # fmt: skip
        if survived:
            reading.append(f"- {title}: survived by {', '.join(survived)} (every check passed).")
    for error in study.errors:
        lines.append(f"- could not check {error}")
        reading.append(f"- **{title}: not checked** for {error}")
    return ReportSection(reading=reading, lines=[*lines, ""])
