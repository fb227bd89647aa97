"""`patternbench engines` (`make bench-engines`): how much headroom the load engines have.

Two ratios, each from one run on this machine, against a Go `net/http` hello server on the
system's CPUs with the generator on the load generator's CPUs:

- loadgen's highest rate kept on schedule (achieved ≥ 99% of target, slip p99 ≤ 5 ms, CPU
  < 90%, errors ≤ 1%, whatever the reason it would fall behind — here the question is the
  generator's ceiling, so a saturated server counts against it too) as a share of wrk's
  closed-loop rate (target ≥ 0.5);
- the Locust recording hook's overhead: Locust FastHttpUser throughput with the hook recording
  every request into HDR histograms vs the same locustfile with the hook off (target ≤ 10%),
  alternated A B A B so drift hits both.

A third, loadgen's gRPC mode against ghz on the go-grpc server, is `bench.engines.check_grpc`'s;
it shares the ceiling search and its rules (`loadgen_step`, `loadgen_max_rps`) from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.engines import recording
from bench.engines.loadgen import Loadgen
from bench.engines.url import LoadRequest
from bench.engines.url import run as run_load
from bench.launch.cpusets import plan
from bench.launch.probes import http_ready
from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use
from bench.models import LoadStats
from bench.stats import headroom

HELLO_PORT = 18090
#: For the ceiling, the generator must deliver this share of the rate it was asked for.
ON_SCHEDULE_SHARE = 0.99
#: ... and at most this share of its requests may fail (a fast error is not a served request).
MAX_ERROR_SHARE = 0.01


@dataclass(frozen=True)
class EngineFigures:
    wrk_rps: float
    loadgen_max_rps: float
    loadgen_ratio: float
    locust_plain_rps: list[float]
    locust_recording_rps: list[float]
    recording_overhead: float


@contextmanager
def hello_server(root: Path, cpus: list[int], workdir: Path) -> Iterator[str]:
    port = HELLO_PORT
    while port_in_use(port):
        port += 1
    supervisor = Supervisor()
    with supervisor.running():
        supervisor.start(
            LaunchSpec(
                name="hello", command=["go/bin/hello", "--listen", f"127.0.0.1:{port}"],
                cwd=root, cpus=cpus, ports=[port], ready=http_ready("127.0.0.1", port),
                ready_timeout_s=10, log_path=workdir / "hello.log",
            )
        )  # fmt: skip
        yield f"http://127.0.0.1:{port}/"


def wrk_rps(url: str, cpus: list[int], seconds: int = 5) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    out = subprocess.run(
        ["taskset", "--cpu-list", ",".join(map(str, cpus)), wrk, "-t1", "-c32", f"-d{seconds}s",
         url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"could not read wrk's output: {out}")
    return float(match.group(1))


@dataclass(frozen=True)
class Step:
    """One rate of loadgen's ceiling search: what it measured, and why it was not on schedule
    (empty: it was)."""

    rate: float
    stats: LoadStats
    reasons: list[str]


def off_schedule(stats: LoadStats, rate: float) -> list[str]:
    """Why loadgen did not keep `rate` on schedule, whatever held it back (the generator, or the
    server saturating: both count against the ceiling); empty when it did."""
    slip = stats.slip_ms.p99 if stats.slip_ms else 0.0
    reasons = headroom.invalid_reasons(stats)
    if stats.achieved_rps < ON_SCHEDULE_SHARE * rate:
        reasons.append(f"achieved under {ON_SCHEDULE_SHARE:.0%} of the rate")
    if slip > headroom.MAX_SLIP_P99_MS:
        reasons.append(f"slip p99 over {headroom.MAX_SLIP_P99_MS:g} ms")
    if stats.errors > MAX_ERROR_SHARE * max(stats.requests, 1):
        reasons.append(f"errors on {stats.errors / max(stats.requests, 1):.1%} of the requests")
    return reasons


def loadgen_step(
    request: LoadRequest, say: Callable[[str], None], what: str = "loadgen", unit: str = "req/s"
) -> Step:
    """loadgen at `request.rate`, judged by `off_schedule`, with one line said about it."""
    assert request.rate is not None
    stats = run_load(request, {"loadgen": Loadgen()})
    reasons = off_schedule(stats, request.rate)
    slip = stats.slip_ms.p99 if stats.slip_ms else 0.0
    verdict = reasons[0] if reasons else "on schedule"
    say(f"{what} at {request.rate:,.0f} {unit}: achieved {stats.achieved_rps:,.0f}, "
        f"slip p99 {slip:.2f} ms, CPU {stats.generator_cpu_percent:.0f}%: {verdict}")  # fmt: skip
    return Step(rate=request.rate, stats=stats, reasons=reasons)


def loadgen_max_rps(measure: Callable[[float], bool], start: float, steps: int = 8) -> float:
    """The highest rate at which `measure(rate)` says the generator kept up: growth by 1.5 until
    it does not, then bisection between the last good and first bad rate."""
    good, bad, rate = 0.0, None, start
    for _ in range(steps):
        if measure(rate):
            good = rate
        else:
            bad = rate
        if bad is None:
            rate = good * 1.5
        elif bad - good <= 0.05 * max(good, 1.0):
            break
        else:
            rate = (good + bad) / 2 if good else bad / 2
    return good


def locust_rps(root: Path, url: str, cpus: list[int], workdir: Path, record: bool) -> float:
    """Closed-loop FastHttpUser throughput from Locust's own final stats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATTERNBENCH")}
    if record:
        env |= {recording.OUTPUT_ENV: str(workdir / "rec.json"), recording.WARMUP_ENV: "1"}
    out = subprocess.run(
        ["taskset", "--cpu-list", ",".join(map(str, cpus)), sys.executable, "-m", "locust",
         "-f", str(root / "scenarios" / "locust" / "url.py"), "--headless", "-u", "64", "-r", "64",
         "-t", "6s", "--host", url.rstrip("/"), "--path", "/", "--json", "--only-summary",
         "UrlUser"],
        capture_output=True, text=True, env=env, cwd=workdir, timeout=60, check=True,
    ).stdout  # fmt: skip
    (stats,) = [s for s in json.loads(out) if s["name"] == "/"]
    seconds = float(stats["last_request_timestamp"]) - float(stats["start_time"])
    return float(stats["num_requests"]) / max(seconds, 1e-9)


def measure_engines(root: Path, say: Callable[[str], None]) -> EngineFigures:
    cpus = plan(sorted(os.sched_getaffinity(0)))
    workdir = Path(tempfile.mkdtemp(prefix="patternbench-engines-"))
    try:
        with hello_server(root, cpus.system, workdir) as url:
            say(f"hello server on CPUs {cpus.system}, generators on CPUs {cpus.loadgen}")
            wrk = wrk_rps(url, cpus.loadgen)
            say(f"wrk -t1 -c32: {wrk:,.0f} req/s")

            def kept_up(rate: float) -> bool:
                request = LoadRequest(
                    url=url, engine="loadgen", rate=rate, duration_s=3.0, warmup_s=1.0,
                    arrival="constant", users=1, cpus=cpus.loadgen,
                    workdir=workdir / f"loadgen-{rate:.0f}", root=root, max_in_flight=256,
                )  # fmt: skip
                return not loadgen_step(request, say).reasons

            best = loadgen_max_rps(kept_up, start=20_000.0)
            plain: list[float] = []
            recorded: list[float] = []
            for _ in range(3):
                plain.append(locust_rps(root, url, cpus.loadgen, workdir, record=False))
                recorded.append(locust_rps(root, url, cpus.loadgen, workdir, record=True))
                say(f"locust FastHttpUser: plain {plain[-1]:,.0f} req/s, "
                    f"recording {recorded[-1]:,.0f} req/s")  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    overhead = 1.0 - statistics.median(recorded) / statistics.median(plain)
    return EngineFigures(
        wrk_rps=wrk,
        loadgen_max_rps=best,
        loadgen_ratio=best / wrk,
        locust_plain_rps=plain,
        locust_recording_rps=recorded,
        recording_overhead=overhead,
    )
