"""The Locust load engine: a locustfile run headless as a subprocess on the generator's CPUs.

What it runs is the pattern's `[scenario.locust]` table (`LocustTable`): the locustfile, extra
arguments, and its User classes. Closed-loop runs the closed-loop users (paced by the scenario);
open-loop runs the open-loop user (`bench.engines.recording.open_loop_user`) as the single user,
at the target rate.
Latencies come from the recording hook (`bench.recording`), not from Locust's rounded
statistics; the generator's CPU is measured from outside with psutil, because Locust's CPU
warning never fires in runs shorter than about 20 s.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bench.engines import recording
from bench.engines.spec import LoadError, LoadSpec, Window, follow, load_stats, start_generator
from bench.launch.supervisor import Supervisor
from bench.models import LoadStats

#: Locust's run-time clock starts before its test_start event; this slack lets it run past the
#: recorder's window, which is what decides what is measured.
RUN_TIME_SLACK_S = 2.0


class LocustTable(BaseModel):
    """`[scenario.locust]`: a locustfile that also runs on its own, and its User classes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locustfile: str = Field(description="relative to the repository root")
    args: list[str] = Field(default=[], description="extra Locust arguments")
    closed_loop_user: str = Field(description="the locustfile's closed-loop User class")
    open_loop_user: str = Field(description="its open_loop_user() class")


class Locust:
    """The engine object the composition root names `locust`."""

    table_model: type[BaseModel] = LocustTable
    closed_loop = True

    def build(self, tools_root: Path, log: Path) -> None:
        pass  # Locust runs in the harness's own environment

    def run(
        self,
        table: BaseModel,
        spec: LoadSpec,
        supervisor: Supervisor,
        window: Window,
        on_progress: Callable[[float], None] | None = None,
    ) -> LoadStats:
        assert isinstance(table, LocustTable)
        return run(table, spec, supervisor, window, on_progress)


def command(table: LocustTable, spec: LoadSpec) -> list[str]:
    open_loop = spec.load_model == "open-loop"
    run_time = max(1, round(spec.warmup_s + spec.duration_s + RUN_TIME_SLACK_S))
    return [
        sys.executable, "-m", "locust",
        "-f", str(spec.root / table.locustfile),
        "--headless", "--only-summary",
        "--users", "1" if open_loop else str(spec.users),
        "--spawn-rate", "1" if open_loop else str(spec.spawn_rate),
        "--run-time", f"{run_time}s",
        "--host", spec.base_url,
        "--loglevel", "WARNING",
        *table.args,
        table.open_loop_user if open_loop else table.closed_loop_user,
    ]  # fmt: skip


def environment(spec: LoadSpec, record: str) -> dict[str, str]:
    # The pattern's root on the path: a locustfile may import its siblings as
    # `scenarios.locust.<module>` (Locust itself only adds the locustfile's own folder).
    path = os.pathsep.join(p for p in (str(spec.root.resolve()), os.environ.get("PYTHONPATH")) if p)
    env = {
        "PYTHONPATH": path,
        recording.OUTPUT_ENV: record,
        recording.WARMUP_ENV: str(spec.warmup_s),
        recording.DURATION_ENV: str(spec.duration_s),
    }
    if spec.load_model == "open-loop":
        env |= {
            recording.RATE_ENV: str(spec.rate),
            recording.ARRIVAL_ENV: spec.arrival,
            recording.SEED_ENV: str(spec.seed),
            recording.MAX_IN_FLIGHT_ENV: str(spec.max_in_flight),
        }
    return env


def run(
    table: LocustTable,
    spec: LoadSpec,
    supervisor: Supervisor,
    window: Window,
    on_progress: Callable[[float], None] | None = None,
) -> LoadStats:
    """Run the load; `window` opens when the recorder's window does and closes with it."""
    record = spec.workdir / "locust-recording.json"
    announced = recording.window_path(record)
    record.unlink(missing_ok=True)
    announced.unlink(missing_ok=True)
    proc = start_generator(
        supervisor, spec, "locust", command(table, spec), environment(spec, str(record))
    )

    def window_start() -> float | None:
        try:
            return float(json.loads(announced.read_text(encoding="utf-8"))["window_start"])
        except (OSError, ValueError, KeyError):
            return None

    try:
        cpu = follow(proc, spec, window, window_start, on_progress, RUN_TIME_SLACK_S)
    except LoadError as e:
        raise LoadError(f"locust: {e}: {proc.stderr_tail()}") from None
    finally:
        supervisor.stop(proc)
    if not record.exists():
        raise LoadError(
            f"locust wrote no recording (exit {proc.exit_code()}): {proc.stderr_tail()}"
        )
    data: recording.Recording = json.loads(record.read_text(encoding="utf-8"))
    return load_stats(
        engine="locust",
        spec=spec,
        histogram=data["histogram"],
        uncorrected_histogram=data["uncorrected_histogram"],
        slip_histogram=data["slip_histogram"],
        requests=data["requests"],
        sent=data["sent_in_window"],
        errors=data["errors"],
        error_kinds=data["error_kinds"],
        duration_s=data["window_end"] - data["window_start"],
        generator_cpu_percent=cpu,
        in_flight_cap_hit=data["in_flight_cap_hit"],
    )
