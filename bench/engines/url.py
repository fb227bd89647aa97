"""`patternbench load URL`: the load engines pointed at any HTTP endpoint, like wrk2 or vegeta
(or, with loadgen, at a gRPC method: `grpc://host:port` and `--grpc-method`).

Prints an HDR percentile summary (corrected and uncorrected latency, target vs achieved rate,
generator CPU, schedule slip, and whether the generator was the limit); `--json FILE` writes a
small summary that scripts can rely on (`Summary`, documented in the README).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from pydantic import BaseModel

from bench.engines import target
from bench.engines.loadgen import LoadgenTable
from bench.engines.locust import LocustTable
from bench.engines.spec import LoadEngine, LoadError, LoadSpec
from bench.launch.supervisor import Supervisor
from bench.models import LoadStats, Percentiles
from bench.stats import headroom
from bench.store import write_atomic


class LatencyPercentiles(TypedDict):
    p50: float
    p90: float
    p95: float | None
    p99: float
    p999: float
    max: float


class Rate(TypedDict):
    target: float | None
    achieved: float


class Latency(TypedDict):
    corrected: LatencyPercentiles
    uncorrected: LatencyPercentiles | None


#: A window with more failed requests than this share is mostly errors, and says so first.
MOSTLY = 0.5


class Summary(TypedDict):
    """The `--json` file. Latencies in ms; `corrected` is from the intended send time
    (open-loop) or the actual one (closed-loop, where `uncorrected` is null). `problems`: a window
    of mostly errors says so; `failed`: mostly connection errors, the target did not answer."""

    url: str
    engine: str
    load_model: str
    rate: Rate
    problems: list[str]
    failed: bool
    valid: bool
    invalid_reasons: list[str]
    latency_ms: Latency
    slip_p99_ms: float | None
    requests: int
    errors: int
    error_share: float
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
    engine: str
    rate: float | None
    duration_s: float
    warmup_s: float
    arrival: str
    users: int
    cpus: list[int]
    workdir: Path
    root: Path
    max_in_flight: int = 1000
    grpc_method: str | None = None
    grpc_request: dict[str, object] | None = None
    proto_modules: tuple[str, ...] = ()


def table(request: LoadRequest, scheme: str, path: str) -> BaseModel:
    """The engine's table for an ad-hoc target, as a pattern's system.toml would give it."""
    if request.engine == "locust":
        if scheme != "http":
            raise LoadError("the locust engine loads http:// URLs (use --engine loadgen for gRPC)")
        return LocustTable(
            locustfile="scenarios/locust/url.py",
            args=["--path", path],
            closed_loop_user="UrlUser",
            open_loop_user="OpenLoopUrl",
        )
    if scheme == "grpc":
        if not request.grpc_method:
            raise LoadError("a grpc:// URL needs --grpc-method /package.Service/Method")
        return LoadgenTable(
            grpc_method=request.grpc_method,
            grpc_request=dict(request.grpc_request or {}),
            proto_modules=list(request.proto_modules),
        )
    return LoadgenTable(path=path)


def run(request: LoadRequest, engines: Mapping[str, LoadEngine]) -> LoadStats:
    try:
        scheme, host, port, path = target.split(request.url)
    except ValueError as e:
        raise LoadError(str(e)) from None
    engine = engines[request.engine]
    if request.rate is None and not engine.closed_loop:
        raise LoadError(f"{request.engine} is open-loop only: give --rate (or use --engine locust)")
    what = table(request, scheme, path)
    spec = LoadSpec(
        host=host,
        port=port,
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
        root=request.root,
        tools_root=request.root,
    )
    supervisor = Supervisor()
    with supervisor.running():
        return engine.run(what, spec, supervisor, NoWindow())


def _pcts(p: Percentiles) -> LatencyPercentiles:
    return {"p50": p.p50, "p90": p.p90, "p95": p.p95, "p99": p.p99, "p999": p.p999, "max": p.max}


def _connection(kind: str) -> bool:
    """loadgen's `connection` and `grpc Unavailable`, Locust's exception names (ConnectionError)."""
    return "connection" in kind.lower() or kind == "grpc Unavailable"


def problems(load: LoadStats) -> tuple[list[str], bool]:
    """What a window of mostly errors says first, and whether it failed: mostly connection errors
    mean the target did not answer, and its latencies are those of failures."""
    if not load.requests or load.errors <= MOSTLY * load.requests:
        return [], False
    kinds = sorted(load.error_kinds.items(), key=lambda kv: -kv[1])
    said = ", ".join(f"{kind} {count:,}" for kind, count in kinds)
    share = f"{load.errors / load.requests:.0%} of the {load.requests:,} requests"
    if sum(count for kind, count in kinds if _connection(kind)) > MOSTLY * load.requests:
        return [f"the target did not answer: {share} failed to connect ({said})"], True
    return [f"mostly errors: {share} failed ({said}); the latencies are mostly theirs"], False


def summary(url: str, load: LoadStats, *, poisson: bool = False) -> Summary:
    reasons = headroom.invalid_reasons(load, poisson=poisson)
    said, failed = problems(load)
    return {
        "url": url,
        "engine": load.engine,
        "load_model": load.load_model,
        "rate": {"target": load.target_rps, "achieved": load.achieved_rps},
        "problems": said,
        "failed": failed,
        "valid": not reasons,
        "invalid_reasons": reasons,
        "latency_ms": {
            "corrected": _pcts(load.latency_ms),
            "uncorrected": _pcts(load.uncorrected_ms) if load.uncorrected_ms else None,
        },
        "slip_p99_ms": load.slip_ms.p99 if load.slip_ms else None,
        "requests": load.requests,
        "errors": load.errors,
        "error_share": load.errors / load.requests if load.requests else 0.0,
        "error_kinds": load.error_kinds,
        "generator_cpu_percent": load.generator_cpu_percent,
        "duration_s": load.duration_s,
    }


def write_summary(path: Path, data: Summary) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def text(data: Summary) -> str:
    """The terminal summary, wrk2-style; a window of mostly errors says so first."""
    rate = data["rate"]
    asked = f"{rate['target']:,.0f}" if rate["target"] is not None else "closed-loop"
    lines = [
        *(f"{'FAILED' if data['failed'] else 'ERRORS'}: {p}" for p in data["problems"]),
        f"{data['url']}: {data['engine']} {data['load_model']}, {data['duration_s']:.1f} s",
        f"  rate      target {asked}  achieved {rate['achieved']:,.1f} req/s",
        f"  requests  {data['requests']:,}  errors {data['errors']:,} {data['error_kinds'] or ''}",
        f"  generator CPU {data['generator_cpu_percent']:.0f}%"
        + (f", schedule slip p99 {data['slip_p99_ms']:.2f} ms" if data["slip_p99_ms"] else ""),
        "",
        "  latency ms     p50       p90       p95       p99     p99.9       max",
    ]
    for label, p in (("corrected", data["latency_ms"]["corrected"]),
                     ("uncorrected", data["latency_ms"]["uncorrected"])):  # fmt: skip
        if p is not None:
            values = (p["p50"], p["p90"], p["p95"], p["p99"], p["p999"], p["max"])
            cells = (f"{v:>10.2f}" if v is not None else f"{'—':>10}" for v in values)
            lines.append(f"  {label:<11}" + "".join(cells))
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
