"""The loadgen engine: `go/bin/loadgen`, the Go open-loop generator, for rates Locust cannot reach.

loadgen sends requests at the target rate whatever the answers, measures each latency from its
intended send time (and from its actual send time beside it), and writes a JSON result whose
fields are documented in `go/internal/loadgen`. Its measured window starts `warmup_s` after it
starts, so the caller's window is opened then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.engines.spec import LoadError, LoadSpec, Window, follow, load_stats, start_generator
from bench.launch.supervisor import Supervisor
from bench.models import LoadStats

#: Time after the window for in-flight requests to finish and the JSON to be written.
SLACK_S = 12.0


def command(binary: Path, spec: LoadSpec, output: Path) -> list[str]:
    if spec.rate is None or spec.loadgen_path is None:
        raise LoadError("loadgen needs an open-loop rate and the scenario's loadgen path")
    return [
        str(binary),
        "--url", spec.host + spec.loadgen_path,
        "--rate", f"{spec.rate:g}",
        "--duration", f"{spec.duration_s:g}s",
        "--warmup", f"{spec.warmup_s:g}s",
        "--arrival", spec.arrival,
        "--seed", str(spec.seed),
        "--max-in-flight", str(spec.max_in_flight),
        "--json", str(output),
        "--quiet",
    ]  # fmt: skip


def run(
    binary: Path,
    spec: LoadSpec,
    supervisor: Supervisor,
    window: Window,
    on_progress: Callable[[float], None] | None = None,
) -> LoadStats:
    if spec.load_model != "open-loop":
        raise LoadError("loadgen is open-loop only: use the locust engine for closed-loop users")
    output = spec.workdir / "loadgen.json"
    output.unlink(missing_ok=True)
    proc = start_generator(supervisor, spec, "loadgen", command(binary, spec, output))
    opens_at = time.time() + spec.warmup_s
    try:
        follow(proc, spec, window, lambda: opens_at, on_progress, SLACK_S)
    except LoadError as e:
        raise LoadError(f"loadgen: {e}: {proc.stderr_tail()}") from None
    finally:
        supervisor.stop(proc)
    try:
        data: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        histograms = data["histograms"]
        duration = float(data["window"]["duration_s"])
        return load_stats(
            engine="loadgen",
            spec=spec,
            histogram=histograms["corrected"],
            uncorrected_histogram=histograms["uncorrected"],
            slip_histogram=histograms["slip"],
            requests=int(data["requests"]),
            sent=round(float(data["rate"]["achieved"]) * duration),
            errors=int(data["errors"]),
            error_kinds={str(k): int(v) for k, v in data["error_kinds"].items()},
            duration_s=duration,
            generator_cpu_percent=float(data["generator"]["cpu_percent"]),
            in_flight_cap_hit=bool(data["generator"]["in_flight_cap_hit"]),
        )
    except OSError:
        raise LoadError(
            f"loadgen wrote no result (exit {proc.exit_code()}): {proc.stderr_tail()}"
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise LoadError(f"{output}: unreadable loadgen result: {e!r}") from None
