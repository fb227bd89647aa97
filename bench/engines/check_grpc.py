"""loadgen's gRPC mode against ghz, the third figure of `patternbench engines`.

Against a pattern's gRPC implementation named by `--grpc-target PATTERN/IMPL` (`make
bench-engines`: the go-grpc server), started from its system.toml on the system's CPUs with
the generator on the load generator's CPUs, both generators make the implementation's own call:
its loadgen table's `grpc_method` with its `grpc_request` (ghz: each `{rand:N}` as 0, the
methods found by server reflection; loadgen: drawn per call, as in a run):

- ghz (pinned by the Makefile, `make bench-engines` installs it and passes its path in
  `PATTERNBENCH_GHZ`; nothing searches for it) is closed-loop: `-c` workers each send their next
  call when the last one answers, so its calls/s is the ceiling of the client and server
  together. It runs `GHZ_SECONDS` in each shape of `GHZ_SHAPES` (workers × connections) and the
  best shape is kept; only calls answered OK count (the calls a `-z` run cuts off at its end fail
  with Unavailable);
- loadgen is open-loop: its figure is the highest rate it kept on schedule, searched and judged
  exactly as the HTTP ceiling in `bench.engines.check` (`loadgen_max_rps`, `loadgen_step`), on
  one connection.

The ratio loadgen / ghz has the target ≥ 0.8. Each generator gets a fresh server process, so
neither inherits the other's connections, heap or (ghz's -z cut-off) cancelled calls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.catalog import CatalogError, Kinds, load_catalog, template_values
from bench.engines.check import loadgen_max_rps, loadgen_step
from bench.engines.loadgen import LoadgenTable
from bench.engines.url import LoadRequest
from bench.launch.cpusets import plan
from bench.launch.grpc_probe import GrpcProbe, GrpcSpec
from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use, thread_env
from bench.templates import render

#: The ghz binary `make bench-engines` installs (an absolute path).
GHZ_ENV = "PATTERNBENCH_GHZ"
GRPC_PORT = 18095
#: A loadgen placeholder: ghz sends it as 0.
_RAND = re.compile(r"\{rand:\d+\}")
#: ghz's shapes tried, (workers, connections): the best is kept.
GHZ_SHAPES = ((32, 1), (64, 1), (32, 2), (64, 2))
GHZ_SECONDS = 5
#: loadgen's cap on calls in flight, as for the HTTP ceiling.
LOADGEN_MAX_IN_FLIGHT = 256
TARGET_RATIO = 0.8


class GrpcCheckError(Exception):
    """The check could not be run: ghz failed or said nothing usable, or the target is not a
    gRPC implementation with a unary loadgen call (one line)."""


@dataclass(frozen=True)
class GhzRun:
    """One ghz run, from its `--format json` report."""

    concurrency: int
    connections: int
    calls: int
    ok: int
    seconds: float
    errors: dict[str, int]

    @property
    def ok_rps(self) -> float:
        """Calls answered OK per second of the run."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class GrpcFigures:
    ghz_runs: list[GhzRun]
    ghz_best: GhzRun
    loadgen_max_rps: float
    ratio: float
    system_cpus: list[int]
    loadgen_cpus: list[int]


def ghz_binary() -> Path | str:
    """The ghz of `PATTERNBENCH_GHZ`, or why there is none (one line)."""
    value = os.environ.get(GHZ_ENV, "")
    if not value:
        return (
            f"ghz not given ({GHZ_ENV} is unset): `make bench-engines` installs the pinned "
            "version into .tools/ and passes it"
        )
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        return f"{GHZ_ENV}={value} is not an executable file: `make bench-engines` installs ghz"
    return path


def parse_ghz(text: str) -> GhzRun:
    """A `ghz --format json` report: its shape (from its options), its calls, and how many of
    them were answered OK over its `total` (nanoseconds)."""
    try:
        data = json.loads(text)
        options = data["options"]
        codes = {str(k): int(v) for k, v in (data.get("statusCodeDistribution") or {}).items()}
        return GhzRun(
            concurrency=int(options["concurrency"]),
            connections=int(options.get("connections") or 1),
            calls=int(data["count"]),
            ok=codes.get("OK", 0),
            seconds=float(data["total"]) / 1e9,
            errors={k: v for k, v in codes.items() if k != "OK"},
        )
    except (ValueError, KeyError, TypeError) as e:
        raise GrpcCheckError(f"unreadable ghz report: {e!r}") from None


def ghz_command(
    ghz: Path,
    target: Target,
    port: int,
    cpus: list[int],
    concurrency: int,
    connections: int,
    seconds: int,
) -> list[str]:
    return [
        "taskset", "--cpu-list", ",".join(map(str, cpus)), str(ghz),
        "--insecure", "--call", target.method.lstrip("/").replace("/", "."),
        "--data", json.dumps(target.fixed_request(), separators=(",", ":")),
        "--concurrency", str(concurrency), "--connections", str(connections),
        "--cpus", str(len(cpus)), "--duration", f"{seconds}s", "--format", "json",
        f"127.0.0.1:{port}",
    ]  # fmt: skip


def run_ghz(
    root: Path,
    ghz: Path,
    target: Target,
    port: int,
    cpus: list[int],
    concurrency: int,
    connections: int,
    seconds: int = GHZ_SECONDS,
) -> GhzRun:
    done = subprocess.run(
        ghz_command(ghz, target, port, cpus, concurrency, connections, seconds),
        cwd=root, env={**os.environ, **thread_env(cpus)}, capture_output=True, text=True,
        timeout=seconds + 60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        tail = " ".join(done.stderr.split()[-40:])
        raise GrpcCheckError(f"ghz exited with {done.returncode}: {tail}")
    run = parse_ghz(done.stdout)
    if run.ok == 0:
        raise GrpcCheckError(f"ghz: no call answered OK ({run.calls:,} calls: {run.errors})")
    return run


@dataclass(frozen=True)
class Target:
    """A pattern's gRPC implementation as its system.toml describes it: how to start it (its
    command and the pattern's flags, rendered with the default parameters) and its own call."""

    name: str
    command: tuple[str, ...]
    """The implementation's command and the pattern's flags, as templates."""
    values: Mapping[str, object]
    """What they are rendered with, but `port` and `metrics_port`."""
    probe: GrpcSpec
    method: str
    request: dict[str, Any]
    proto_modules: tuple[str, ...]

    def fixed_request(self) -> dict[str, Any]:
        """The request with each `{rand:N}` as 0: ghz sends one request for every call."""
        fixed = self.request.items()
        return {k: (_RAND.sub("0", v) if isinstance(v, str) else v) for k, v in fixed}

    def start_command(self, port: int, metrics_port: int) -> list[str]:
        return render(
            list(self.command), {**self.values, "port": port, "metrics_port": metrics_port}
        )


def find_target(root: Path, name: str, kinds: Kinds) -> Target:
    """`PATTERN/IMPL` from the catalog: a gRPC implementation with a loadgen gRPC table."""
    pattern_name, _, impl_name = name.partition("/")
    try:
        pattern = load_catalog(root, kinds).get(pattern_name)
    except CatalogError as e:
        raise GrpcCheckError(str(e)) from None
    if pattern is None or impl_name not in pattern.implementations:
        raise GrpcCheckError(f"--grpc-target {name}: no such pattern/implementation")
    impl = pattern.implementations[impl_name]
    if impl.probe.kind != "grpc":
        kind = impl.probe.kind
        raise GrpcCheckError(f"--grpc-target {name}: not a gRPC implementation (probe {kind})")
    params = pattern.resolve_params("default", {})
    values = template_values(pattern, params, python=sys.executable)
    table = pattern.engine_table("loadgen", values, impl_name)
    assert isinstance(table, LoadgenTable)
    if table.grpc_method is None or table.grpc_stream:
        raise GrpcCheckError(f"--grpc-target {name}: its loadgen table makes no unary gRPC call")
    return Target(
        name=name, command=(*impl.command, *pattern.args), values=values,
        probe=GrpcSpec.model_validate(impl.probe.rest()),
        method=table.grpc_method, request=dict(table.request_json(root)),
        proto_modules=tuple(table.proto_modules),
    )  # fmt: skip


@contextmanager
def grpc_server(root: Path, target: Target, cpus: list[int], workdir: Path) -> Iterator[int]:
    """The target on `cpus`, ready (health: SERVING); yields its gRPC port."""
    port = GRPC_PORT
    while port_in_use(port) or port_in_use(port + 1):
        port += 2
    probe = GrpcProbe()
    supervisor = Supervisor()
    with supervisor.running():
        supervisor.start(
            LaunchSpec(
                name=target.name.replace("/", "-"), command=target.start_command(port, port + 1),
                cwd=root, cpus=cpus, ports=[port, port + 1],
                ready=lambda: probe.ready(target.probe, "127.0.0.1", port),
                ready_what=f"grpc.health.v1.Health/Check on 127.0.0.1:{port}",
                ready_timeout_s=20, log_path=workdir / f"server-{port}.log",
            )
        )  # fmt: skip
        yield port


def grpc_request(
    target: Target,
    port: int,
    rate: float,
    cpus: list[int],
    workdir: Path,
    root: Path,
    duration_s: float = 3.0,
    warmup_s: float = 1.0,
) -> LoadRequest:
    """loadgen's gRPC load at `rate`, as one step of the ceiling search (the HTTP one's window)."""
    return LoadRequest(
        url=f"grpc://127.0.0.1:{port}", engine="loadgen", rate=rate, duration_s=duration_s,
        warmup_s=warmup_s, arrival="constant", users=1, cpus=cpus,
        workdir=workdir / f"loadgen-grpc-{rate:.0f}", root=root,
        max_in_flight=LOADGEN_MAX_IN_FLIGHT, grpc_method=target.method,
        grpc_request=dict(target.request), proto_modules=target.proto_modules,
    )  # fmt: skip


def measure_grpc(root: Path, ghz: Path, target: Target, say: Callable[[str], None]) -> GrpcFigures:
    cpus = plan(sorted(os.sched_getaffinity(0)))
    workdir = Path(tempfile.mkdtemp(prefix="patternbench-engines-grpc-"))
    call = json.dumps(target.request, separators=(",", ":"))
    say(f"{target.name} on CPUs {cpus.system}, ghz and loadgen on CPUs {cpus.loadgen}, "
        f"each with a fresh server; {target.method} {call}")  # fmt: skip
    say("ghz is closed-loop (its rate is the client and server's ceiling), loadgen open-loop "
        "(its rate is the highest it kept on schedule)")  # fmt: skip
    try:
        runs: list[GhzRun] = []
        with grpc_server(root, target, cpus.system, workdir) as port:
            for concurrency, connections in GHZ_SHAPES:
                run = run_ghz(root, ghz, target, port, cpus.loadgen, concurrency, connections)
                runs.append(run)
                failed = f", {run.calls - run.ok:,} not OK" if run.calls > run.ok else ""
                say(f"ghz -c {concurrency} --connections {connections}: {run.ok_rps:,.0f} calls/s "
                    f"({run.ok:,} OK in {run.seconds:.1f} s{failed})")  # fmt: skip
        best = max(runs, key=lambda r: r.ok_rps)
        with grpc_server(root, target, cpus.system, workdir) as port:

            def kept_up(rate: float) -> bool:
                request = grpc_request(target, port, rate, cpus.loadgen, workdir, root)
                return not loadgen_step(request, say, "loadgen gRPC", "calls/s").reasons

            # Half ghz's rate, rounded: the search's growth and bisection then land near the answer.
            top = loadgen_max_rps(kept_up, start=max(100.0, round(best.ok_rps / 2, -2)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return GrpcFigures(
        ghz_runs=runs,
        ghz_best=best,
        loadgen_max_rps=top,
        ratio=top / best.ok_rps,
        system_cpus=list(cpus.system),
        loadgen_cpus=list(cpus.loadgen),
    )
