"""The real Python worker-pool service (a subprocess), one per pool kind, over loopback.

Every service listens on port 0 and is found through its ``listening on ADDR`` line on stderr.
Slow tasks are ``spin`` with a few million rounds (about 0.2 µs a round in CPython): long enough
to outlast the short deadlines used here on any machine, bounded so that the file stays quick.
Nothing here asserts on speed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.launch.probes import HttpProbe, HttpSpec
from bench.launch.verify import load_vectors
from systems.answers import WIDE_BUCKETS
from systems.workerpool.kernels import spin
from tests.integration.service_process import Proc, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
VECTORS = load_vectors(ROOT / "systems" / "workerpool" / "vectors.json")
POOLS = ("sync", "threads", "processes")
SLOW = 3_000_000  # rounds of spin: about 0.6 s on a 2-core CI machine, 0.2 s on a fast one

Answer = tuple[int, dict[str, str], bytes]


def service_argv(pool: str | None, **flags: object) -> list[str]:
    argv = [sys.executable, "-m", "systems.workerpool.service", "--listen", "127.0.0.1:0"]
    if pool is not None:
        argv += ["--pool", pool]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def start(procs: list[Proc], pool: str, **flags: object) -> tuple[Proc, str]:
    proc = Proc(service_argv(pool, **flags))
    procs.append(proc)
    return proc, proc.wait_listening(timeout=20.0)[0]


def connect(addr: str, timeout: float = 20.0) -> http.client.HTTPConnection:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    conn.connect()
    return conn


def exchange(
    conn: http.client.HTTPConnection, path: str, method: str = "GET", body: bytes | None = None
) -> Answer:
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def request(
    addr: str, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 20.0
) -> Answer:
    return exchange(connect(addr, timeout), path, method, body)


def spin_path(seed: int, rounds: int) -> str:
    return f"/work?kernel=spin&seed={seed}&rounds={rounds}"


def spin_answer(seed: int, rounds: int) -> dict[str, object]:
    return {
        "kernel": "spin",
        "seed": seed,
        "rounds": rounds,
        "size": 0,
        "output": spin(seed, rounds),
    }


def vector_flags(pool: str) -> dict[str, object]:
    p = VECTORS.params
    return {
        "workers": 1 if pool == "sync" else p["workers"],
        "queue": p["queue"],
        "timeout_ms": p["timeout_ms"],
    }


@pytest.mark.parametrize("pool", POOLS)
def test_vectors(procs: list[Proc], pool: str) -> None:
    _, addr = start(procs, pool, **vector_flags(pool))
    host, port = addr.rsplit(":", 1)
    assert HttpProbe().verify(HttpSpec(), host, int(port), VECTORS) == []

    # Only /work answers are counted, by status; /healthz and other paths are not.
    # Raw cases (malformed requests) are refused by the scaffold, before the service counts.
    http = [x for c in VECTORS.cases if (x := c.exchange("http")) is not None]
    work = [x for x in http if x.request.get("path", "").startswith("/work")]
    for code in (200, 400, 405):
        want = sum(x.expect["status"] == code for x in work)
        assert metric(addr, "workerpool_requests_total", code=str(code)) == want, code
    assert metric(addr, "workerpool_request_duration_seconds_count") == len(work)
    assert metric(addr, "workerpool_in_flight") == 0

    for case in http:  # every answer, errors included, is JSON
        if "raw" in case.request:  # checked by HttpProbe above
            continue
        sent = case.request.get("body")
        body = None if sent is None else json.dumps(sent).encode()
        method = case.request.get("method", "GET")
        _, headers, _ = request(addr, case.request["path"], method, body)
        assert headers["content-type"].startswith("application/json"), case.request


@pytest.mark.parametrize("pool", POOLS)
def test_burst_is_admitted_or_refused_and_nothing_is_lost(procs: list[Proc], pool: str) -> None:
    _, addr = start(procs, pool, workers=1, queue=2)
    n, rounds = 40, 200_000
    barrier = threading.Barrier(n, timeout=20)

    def one(seed: int) -> Answer:
        conn = connect(addr)
        barrier.wait()
        return exchange(conn, spin_path(seed, rounds))

    with ThreadPoolExecutor(n) as pool_threads:
        answers = list(pool_threads.map(one, range(n), timeout=50))
    assert len(answers) == n
    ok = refused = 0
    for seed, (status, headers, body) in enumerate(answers):
        if status == 200:
            ok += 1
            assert json.loads(body) == spin_answer(seed, rounds)
        else:
            refused += 1
            assert status == 503, body
            assert headers["retry-after"] == "1"
            assert headers["content-type"].startswith("application/json")
            assert json.loads(body)["error"]["code"] == "overloaded"
    assert refused >= 1
    assert ok >= 1

    # Still serving normally, with nothing left admitted.
    status, _, body = request(addr, spin_path(7, 50_000))
    assert status == 200
    assert json.loads(body) == spin_answer(7, 50_000)
    assert wait_for(lambda: metric(addr, "workerpool_in_flight") == 0)
    assert metric(addr, "workerpool_requests_total", code="503") == refused
    assert metric(addr, "workerpool_requests_total", code="200") == ok + 1
    assert metric(addr, "workerpool_task_duration_seconds_count", kernel="spin") == ok + 1


@pytest.mark.parametrize("pool", POOLS)
def test_deadline_drops_a_queued_task_without_running_it(procs: list[Proc], pool: str) -> None:
    # A runs; B and C wait behind it past their 100 ms deadline. On threads and processes both
    # are dropped (a process pool has them in its call queue already: they are skipped when they
    # would start). On sync they are read only once A has finished; then one of them runs and
    # the other waits past its deadline and is dropped. A kernel that finishes past the deadline
    # is answered 504 too, its output discarded.
    _, addr = start(procs, pool, workers=1, queue=4, timeout_ms=100)
    later = [connect(addr), connect(addr)]  # accepted now, while the loop is free
    with ThreadPoolExecutor(3) as pool_threads:
        first = pool_threads.submit(request, addr, spin_path(1, SLOW))
        time.sleep(0.05)
        queued: list[Future[Answer]] = []
        for seed, conn in zip((2, 3), later, strict=True):
            queued.append(pool_threads.submit(exchange, conn, spin_path(seed, SLOW)))
            time.sleep(0.02)
        answers = [f.result(timeout=20) for f in (first, *queued)]
    for status, headers, body in answers:
        assert status == 504, body
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "deadline_exceeded"
    assert wait_for(lambda: metric(addr, "workerpool_in_flight") == 0)
    ran = 2 if pool == "sync" else 1
    assert metric(addr, "workerpool_task_duration_seconds_count", kernel="spin") == ran
    assert metric(addr, "workerpool_requests_total", code="504") == 3


@pytest.mark.parametrize("pool", POOLS)
def test_a_client_that_goes_away_drops_its_queued_task(procs: list[Proc], pool: str) -> None:
    # (A process pool already holds such a task in its call queue, where its future can no
    # longer be cancelled: the worker process skips it, told so through shared memory.)
    _, addr = start(procs, pool, workers=1, queue=4)
    gone = connect(addr)
    with ThreadPoolExecutor(1) as pool_threads:
        first = pool_threads.submit(request, addr, spin_path(1, SLOW))
        time.sleep(0.05)
        gone.request("GET", spin_path(2, SLOW))
        time.sleep(0.05)
        gone.close()  # without reading the answer
        status, _, body = first.result(timeout=20)
    assert status == 200
    assert json.loads(body) == spin_answer(1, SLOW)
    assert wait_for(lambda: metric(addr, "workerpool_in_flight") == 0)
    assert metric(addr, "workerpool_task_duration_seconds_count", kernel="spin") == 1


def test_body_limit_methods_paths_and_metrics(procs: list[Proc]) -> None:
    _, addr = start(procs, "threads", workers=2, queue=3)

    def post(body: bytes, path: str = "/work") -> tuple[int, dict[str, object]]:
        status, headers, raw = request(addr, path, "POST", body)
        assert headers["content-type"].startswith("application/json")
        return status, json.loads(raw)

    task = b'{"kernel": "spin", "seed": 5, "rounds": 10}'
    at_limit = task[:-1] + b" " * (64 * 1024 - len(task)) + b"}"
    assert post(at_limit) == (200, spin_answer(5, 10))
    status, answer = post(at_limit + b" ")
    assert status == 400
    assert answer == {
        "error": {"code": "invalid_argument", "message": "body: larger than 65536 bytes"}
    }
    for bad in (b"", b"nope", b"[1]", b'{"kernel": "spin", "rounds": 1e3}'):
        status, answer = post(bad)
        assert status == 400, bad
    status, answer = post(task, "/work?kernel=spin")
    assert status == 400
    assert "query" in str(answer)

    status, headers, raw = request(addr, "/healthz", "POST", b"")
    assert status == 405
    assert headers["allow"] == "GET"
    assert json.loads(raw)["error"]["code"] == "method_not_allowed"
    status, headers, raw = request(addr, "/work", "DELETE")
    assert (status, headers["allow"]) == (405, "GET, POST")
    status, _, raw = request(addr, "/work/")
    assert status == 404
    assert json.loads(raw)["error"]["code"] == "not_found"

    _, headers, raw = request(addr, "/metrics")
    assert headers["content-type"].startswith("text/plain")
    text = raw.decode()
    bounds = re.findall(r'^workerpool_request_duration_seconds_bucket\{le="([^"]+)"\}', text, re.M)
    assert [float(b) for b in bounds[:-1]] == list(WIDE_BUCKETS)
    assert bounds[-1] == "+Inf"
    assert metric(addr, "workerpool_workers") == 2
    assert metric(addr, "workerpool_task_duration_seconds_count", kernel="hash") == 0
    assert "_created" not in text


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(procs: list[Proc]) -> None:
    # (sync and processes: see the drain test below.)
    service, addr = start(procs, "threads", workers=1)
    with ThreadPoolExecutor(1) as pool_threads:
        slow = pool_threads.submit(request, addr, spin_path(4, SLOW))
        assert wait_for(lambda: metric(addr, "workerpool_in_flight") == 1)
        service.popen.send_signal(signal.SIGTERM)
        status, _, body = slow.result(timeout=20)
    assert status == 200
    assert json.loads(body) == spin_answer(4, SLOW)
    assert service.popen.wait(timeout=15) == 0
    with pytest.raises(ConnectionRefusedError):
        request(addr, "/healthz", timeout=2)


@pytest.mark.parametrize("pool", ["sync", "processes"])
def test_sigterm_drains_for_5_s_then_answers_the_waiting_503(procs: list[Proc], pool: str) -> None:
    # Ten kernels of the largest cost, one worker: more work than 5 s on any machine. Those
    # started within 5 s of the signal finish (200); the others are answered 503 then.
    service, addr = start(procs, pool, workers=1, queue=16, timeout_ms=60_000)
    n, rounds = 10, 10_000_000
    conns = [connect(addr, timeout=30) for _ in range(n)]
    with ThreadPoolExecutor(n) as pool_threads:
        futures = [
            pool_threads.submit(exchange, conn, spin_path(seed, rounds))
            for seed, conn in enumerate(conns)
        ]
        time.sleep(0.5)
        service.popen.send_signal(signal.SIGTERM)
        assert service.popen.wait(timeout=20) == 0
        answers = [f.result(timeout=5) for f in futures]
    statuses = sorted(status for status, _, _ in answers)
    assert statuses[0] == 200
    assert statuses[-1] == 503
    for seed, (status, headers, body) in enumerate(answers):
        answer = json.loads(body)
        if status == 200:
            assert answer["seed"] == seed
            assert re.fullmatch(r"[0-9a-f]{16}", answer["output"])
        else:
            assert status == 503
            assert headers["retry-after"] == "1"
            assert answer["error"]["code"] == "overloaded"


def test_sigint_on_an_idle_service_exits_0(procs: list[Proc]) -> None:
    service, addr = start(procs, "processes", workers=2)
    assert request(addr, "/healthz")[0] == 200
    service.popen.send_signal(signal.SIGINT)
    assert service.popen.wait(timeout=15) == 0


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--pool", "sync", "--workers", "2"], "--workers"),
        (["--pool", "threads", "--workers", "0"], "--workers"),
        (["--pool", "processes", "--workers", "257"], "--workers"),
        (["--pool", "threads", "--queue", "-1"], "--queue"),
        (["--pool", "threads", "--timeout-ms", "0"], "--timeout-ms"),
        (["--pool", "fibers"], "--pool"),
        ([], "--pool"),
    ],
)
def test_bad_flag_exits_2_with_one_line(args: list[str], flag: str) -> None:
    argv = service_argv(None) + args
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert flag in done.stderr


def test_refuses_the_pure_python_http_parser() -> None:
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    argv = service_argv("threads")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "C HTTP" in done.stderr


def test_a_body_that_does_not_decode_is_a_400_and_no_traceback(procs: list[Proc]) -> None:
    # Content-Encoding is not part of the contract: the body is taken as sent (not JSON: 400),
    # and nothing tries to gunzip it after the answer.
    proc, addr = start(procs, "sync")
    conn = connect(addr)
    try:
        gzipped = {"Content-Encoding": "gzip"}
        conn.request("POST", "/work", body=b"\x1f\x8bnot gzip", headers=gzipped)
        resp = conn.getresponse()
        status, body = resp.status, json.loads(resp.read())
    finally:
        conn.close()
    assert status == 400
    assert body["error"]["code"] == "bad_request" or body["error"]["code"].startswith("invalid")
    assert request(addr, "/healthz")[0] == 200
    assert not [line for line in proc.log if "Traceback" in line], "".join(proc.log)
