"""`patternbench load URL`: the load engines pointed at any HTTP endpoint, like wrk2 or vegeta.

Prints an HDR percentile summary (corrected and uncorrected latency, target vs achieved rate,
generator CPU, schedule slip, and whether the generator was the limit); `--json FILE` writes a
small summary that scripts can rely on (`Summary`, documented in the README).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlsplit

from bench.engines import loadgen as loadgen_engine
from bench.engines import locust as locust_engine
from bench.engines.spec import LoadError, LoadSpec, LocustScenario
from bench.launch.supervisor import Supervisor
from bench.models import Engine, LoadStats, Percentiles
from bench.stats import headroom
from bench.store import write_atomic


class LatencyPercentiles(TypedDict):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class Rate(TypedDict):
    target: float | None
    achieved: float


class Latency(TypedDict):
    corrected: LatencyPercentiles
    uncorrected: LatencyPercentiles | None


class Summary(TypedDict):
    """The `--json` file. Latencies in ms; `corrected` is from the intended send time
    (open-loop) or the actual one (closed-loop, where `uncorrected` is null)."""

    url: str
    engine: Engine
    load_model: str
    rate: Rate
    valid: bool
    invalid_reasons: list[str]
    latency_ms: Latency
    slip_p99_ms: float | None
    requests: int
    errors: int
    error_kinds: dict[str, int]
    generator_cpu_percent: float
    duration_s: float


class NoWindow:
    """Nothing measured beside the load: an ad-hoc target has no known /metrics or process."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class LoadRequest:
    url: str
    engine: Engine
    rate: float | None
    duration_s: float
    warmup_s: float
    arrival: str
    users: int
    cpus: list[int]
    workdir: Path
    root: Path
    max_in_flight: int = 1000


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LoadError(f"{url}: expected an http:// or https:// URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}", path


def run(request: LoadRequest) -> LoadStats:
    host, path = _split(request.url)
    if request.engine == "loadgen" and request.rate is None:
        raise LoadError("loadgen is open-loop only: give --rate (or use --engine locust)")
    spec = LoadSpec(
        host=host,
        load_model="open-loop" if request.rate is not None else "closed-loop",
        duration_s=request.duration_s,
        warmup_s=request.warmup_s,
        cpus=request.cpus,
        workdir=request.workdir,
        rate=request.rate,
        arrival=request.arrival,
        max_in_flight=request.max_in_flight,
        users=request.users,
        spawn_rate=float(request.users),
        locust=LocustScenario(
            locustfile=request.root / "scenarios" / "locust" / "url.py",
            args=["--path", path],
            closed_loop_user="UrlUser",
            open_loop_user="OpenLoopUrl",
        ),
        loadgen_path=path,
    )
    supervisor = Supervisor()
    with supervisor.running():
        if request.engine == "loadgen":
            binary = request.root / "go" / "bin" / "loadgen"
            return loadgen_engine.run(binary, spec, supervisor, NoWindow())
        return locust_engine.run(spec, supervisor, NoWindow())


def _pcts(p: Percentiles) -> LatencyPercentiles:
    return {"p50": p.p50, "p90": p.p90, "p99": p.p99, "p999": p.p999, "max": p.max}


def summary(url: str, load: LoadStats, *, poisson: bool = False) -> Summary:
    reasons = headroom.invalid_reasons(load, poisson=poisson)
    return {
        "url": url,
        "engine": load.engine,
        "load_model": load.load_model,
        "rate": {"target": load.target_rps, "achieved": load.achieved_rps},
        "valid": not reasons,
        "invalid_reasons": reasons,
        "latency_ms": {
            "corrected": _pcts(load.latency_ms),
            "uncorrected": _pcts(load.uncorrected_ms) if load.uncorrected_ms else None,
        },
        "slip_p99_ms": load.slip_ms.p99 if load.slip_ms else None,
        "requests": load.requests,
        "errors": load.errors,
        "error_kinds": load.error_kinds,
        "generator_cpu_percent": load.generator_cpu_percent,
        "duration_s": load.duration_s,
    }


def write_summary(path: Path, data: Summary) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def text(data: Summary) -> str:
    """The terminal summary, wrk2-style."""
    rate = data["rate"]
    target = f"{rate['target']:,.0f}" if rate["target"] is not None else "closed-loop"
    lines = [
        f"{data['url']}: {data['engine']} {data['load_model']}, {data['duration_s']:.1f} s",
        f"  rate      target {target}  achieved {rate['achieved']:,.1f} req/s",
        f"  requests  {data['requests']:,}  errors {data['errors']:,} {data['error_kinds'] or ''}",
        f"  generator CPU {data['generator_cpu_percent']:.0f}%"
        + (f", schedule slip p99 {data['slip_p99_ms']:.2f} ms" if data["slip_p99_ms"] else ""),
        "",
        "  latency ms     p50       p90       p99     p99.9       max",
    ]
    for label, p in (("corrected", data["latency_ms"]["corrected"]),
                     ("uncorrected", data["latency_ms"]["uncorrected"])):  # fmt: skip
        if p is not None:
            values = (p["p50"], p["p90"], p["p99"], p["p999"], p["max"])
            lines.append(f"  {label:<11}" + "".join(f"{v:>10.2f}" for v in values))
    lines.append("")
    if data["valid"]:
        lines.append("  valid: the load generator kept up")
    else:
        lines += [f"  INVALID: {r}" for r in data["invalid_reasons"]]
    return "\n".join(lines)


def default_cpus() -> list[int]:
    """Without a system to keep apart from, the generator takes the lower half of the CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[: max(1, len(cpus) // 2)]
