"""The real Python fan-out service (a subprocess) against the real Go backend simulator.

Every process listens on port 0 and is found through its ``listening on ADDR`` line on stderr.
If ``go/bin/latencysim`` is missing it is built with ``go build`` (skipped when Go is absent).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.service_process import Proc, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
GO_DIR = ROOT / "go"
SIM_BIN = GO_DIR / "bin" / "latencysim"
VECTORS = json.loads((ROOT / "systems" / "fanout" / "vectors.json").read_text())
ANY_STRING = "<any-string>"


@pytest.fixture(scope="module")
def latencysim() -> Path:
    """The simulator binary, built first if missing (as a fresh clone needs)."""
    if not SIM_BIN.exists():
        go = shutil.which("go")
        if go is None:
            pytest.skip("go/bin/latencysim is missing and Go is not installed to build it")
        subprocess.run(
            [go, "build", "-o", "bin/latencysim", "./cmd/latencysim"],
            cwd=GO_DIR,
            check=True,
            timeout=300,
        )
    return SIM_BIN


def start_sim(
    procs: list[Proc], binary: Path, replicas: int = 2, **flags: object
) -> tuple[Proc, list[str]]:
    """A simulator with ``replicas`` listeners; ``flags`` are its flags (``tail_p`` → --tail-p)."""
    argv = [str(binary), "--listen", ",".join(["127.0.0.1:0"] * replicas), "--seed", "1"]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    proc = Proc(argv)
    procs.append(proc)
    return proc, [f"http://{addr}" for addr in proc.wait_listening(replicas)]


def service_argv(replicas: list[str], **flags: object) -> list[str]:
    argv = [sys.executable, "-m", "systems.fanout.service", "--listen", "127.0.0.1:0"]
    argv += ["--replicas", ",".join(replicas)]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def start_service(procs: list[Proc], replicas: list[str], **flags: object) -> tuple[Proc, str]:
    proc = Proc(service_argv(replicas, **flags))
    procs.append(proc)
    return proc, proc.wait_listening()[0]


def request(
    addr: str, path: str, method: str = "GET", timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def matches(expected: object, actual: object) -> bool:
    """JSON equality where the expected ``"<any-string>"`` matches any non-empty string."""
    if expected == ANY_STRING:
        return isinstance(actual, str) and actual != ""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and expected == actual


def test_vectors(latencysim: Path, procs: list[Proc]) -> None:
    p = VECTORS["params"]
    _, replicas = start_sim(
        procs,
        latencysim,
        dist=p["backend_dist"],
        median_ms=p["backend_median_ms"],
        sigma=p["backend_sigma"],
        tail_p=p["backend_tail_p"],
        tail_ms=p["backend_tail_ms"],
        error_rate=p["backend_error_rate"],
        overrides=p["backend_overrides"],
    )
    _, addr = start_service(
        procs,
        replicas,
        fanout=p["fanout"],
        call_timeout_ms=p["call_timeout_ms"],
        deadline_ms=p["deadline_ms"],
        hedge_delay_ms=p["hedge_delay_ms"],
    )
    for case in VECTORS["cases"]:
        req, want = case["request"], case["expect"]
        if "raw" in req:  # malformed bytes: test_malformed_http.py and the harness send those
            continue
        status, headers, body = request(addr, req["path"], req["method"])
        assert status == want["status"], case["name"]
        assert headers["content-type"].startswith("application/json"), case["name"]
        assert matches(want["body"], json.loads(body)), (case["name"], body)
    assert metric(addr, "fanout_timeouts_total", backend="recommendations") == 3
    assert metric(addr, "fanout_requests_total", code="200") == 3


def test_deadline_answers_degraded_and_the_backend_sees_the_cancel(
    latencysim: Path, procs: list[Proc]
) -> None:
    _, replicas = start_sim(
        procs, latencysim, median_ms=1, overrides='{"pricing":{"median_ms":3000}}'
    )
    _, addr = start_service(procs, replicas, fanout=2, call_timeout_ms=5000, deadline_ms=200)
    start = time.monotonic()
    status, _, body = request(addr, "/catalog/sku-1")
    assert time.monotonic() - start < 1.5
    assert status == 200
    answer = json.loads(body)
    assert answer["missing"] == [{"backend": "pricing", "reason": "timeout"}]
    assert list(answer["parts"]) == ["inventory"]
    assert answer["degraded"] is True
    sim_addr = replicas[0].removeprefix("http://")
    assert wait_for(
        lambda: metric(sim_addr, "latencysim_requests_total", outcome="cancelled", replica="0") == 1
    )
    assert metric(addr, "fanout_backend_calls_total", backend="pricing", outcome="timeout") == 1
    assert metric(addr, "fanout_timeouts_total", backend="pricing") == 1


def test_hedge_to_the_fast_replica(latencysim: Path, procs: list[Proc]) -> None:
    # Two simulators, one replica each: the first always slow, the second fast. Primaries
    # alternate per backend, so every other request starts all its calls on the slow one.
    _, slow = start_sim(procs, latencysim, replicas=1, tail_p=1, tail_ms=3000)
    _, fast = start_sim(procs, latencysim, replicas=1, median_ms=1)
    _, addr = start_service(
        procs,
        slow + fast,
        fanout=4,
        call_timeout_ms=5000,
        deadline_ms=6000,
        hedge_delay_ms=20,
    )
    n = 6
    for i in range(n):
        start = time.monotonic()
        status, _, body = request(addr, f"/catalog/sku-{i}")
        assert time.monotonic() - start < 1.0
        assert status == 200
        answer = json.loads(body)
        assert answer["degraded"] is False, answer
        assert answer["parts"]["pricing"]["item_id"] == f"sku-{i}"
    assert metric(addr, "fanout_hedges_total", backend="pricing") == n // 2
    assert metric(addr, "fanout_backend_calls_total", backend="reviews", outcome="cancelled") == 3
    assert metric(addr, "fanout_backend_calls_total", backend="reviews", outcome="ok") == n
    slow_addr = slow[0].removeprefix("http://")
    cancelled = 4 * n // 2  # the losers: their connections were closed under the simulator
    assert wait_for(
        lambda: (
            metric(slow_addr, "latencysim_requests_total", outcome="cancelled", replica="0")
            == cancelled
        )
    )


def test_hedge_is_not_a_retry_but_survives_a_late_failure(
    latencysim: Path, procs: list[Proc]
) -> None:
    # Replica 0 fails at once (before the hedge fires): that ends the call.
    _, failing = start_sim(procs, latencysim, replicas=1, error_rate=1)
    _, fast = start_sim(procs, latencysim, replicas=1, median_ms=1)
    _, addr = start_service(procs, failing + fast, fanout=2, hedge_delay_ms=50)
    _, _, first = request(addr, "/catalog/a")  # primaries on the failing replica
    _, _, second = request(addr, "/catalog/b")
    assert json.loads(first)["missing"] == [
        {"backend": "inventory", "reason": "error"},
        {"backend": "pricing", "reason": "error"},
    ]
    assert json.loads(second)["degraded"] is False
    assert metric(addr, "fanout_hedges_total", backend="pricing") == 0

    # Replica 0 fails after 100 ms, while the hedge to the 200 ms replica still runs.
    _, late_failing = start_sim(procs, latencysim, replicas=1, median_ms=100, error_rate=1)
    _, slowish = start_sim(procs, latencysim, replicas=1, median_ms=200)
    _, addr = start_service(
        procs, late_failing + slowish, fanout=2, hedge_delay_ms=20, call_timeout_ms=2000
    )
    for item in ("a", "b"):
        status, _, body = request(addr, f"/catalog/{item}")
        assert status == 200
        assert json.loads(body)["degraded"] is False, body
    assert metric(addr, "fanout_hedges_total", backend="pricing") == 2
    assert metric(addr, "fanout_backend_calls_total", backend="pricing", outcome="error") == 2


def test_overloaded_is_503_with_retry_after(latencysim: Path, procs: list[Proc]) -> None:
    _, replicas = start_sim(procs, latencysim, median_ms=800)
    _, addr = start_service(
        procs, replicas, fanout=1, max_in_flight=1, call_timeout_ms=3000, deadline_ms=3000
    )
    with ThreadPoolExecutor(1) as pool:
        slow: Future[tuple[int, dict[str, str], bytes]] = pool.submit(
            request, addr, "/catalog/slow"
        )
        assert wait_for(lambda: metric(addr, "fanout_in_flight") == 1)
        status, headers, body = request(addr, "/catalog/other")
        assert status == 503
        assert headers["retry-after"] == "1"
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "overloaded"
        assert slow.result(timeout=10)[0] == 200
    assert metric(addr, "fanout_requests_total", code="503") == 1


def test_sigterm_drains_the_request_in_flight_and_exits_0(
    latencysim: Path, procs: list[Proc]
) -> None:
    _, replicas = start_sim(
        procs, latencysim, median_ms=1, overrides='{"pricing":{"median_ms":1500}}'
    )
    service, addr = start_service(procs, replicas, fanout=2, call_timeout_ms=4000, deadline_ms=4000)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(request, addr, "/catalog/slow")
        assert wait_for(lambda: metric(addr, "fanout_in_flight") == 1)
        sent = time.monotonic()
        service.popen.send_signal(signal.SIGTERM)
        status, _, body = slow.result(timeout=10)
        assert status == 200
        assert json.loads(body)["degraded"] is False
        assert service.popen.wait(timeout=8) == 0
        assert time.monotonic() - sent < 6
    with pytest.raises(ConnectionRefusedError):
        request(addr, "/healthz", timeout=2)


def test_sigint_on_an_idle_service_exits_0(latencysim: Path, procs: list[Proc]) -> None:
    _, replicas = start_sim(procs, latencysim, replicas=1)
    service, addr = start_service(procs, replicas)
    assert request(addr, "/healthz")[0] == 200
    service.popen.send_signal(signal.SIGINT)
    assert service.popen.wait(timeout=5) == 0


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        ({"fanout": 9}, "--fanout"),
        ({"deadline_ms": -1}, "--deadline-ms"),
        ({"hedge_delay_ms": 10}, "--hedge-delay-ms"),  # with one replica
    ],
)
def test_bad_flag_exits_2_with_one_line(flags: dict[str, object], flag: str) -> None:
    argv = service_argv(["http://127.0.0.1:9"], **flags)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert flag in done.stderr


def test_refuses_the_pure_python_http_parser() -> None:
    argv = service_argv(["http://127.0.0.1:9"])
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "C HTTP" in done.stderr
