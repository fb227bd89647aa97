"""The shared serving scaffold (systems/serving.py): flags, the envelope, metrics, serve and run.

Answers are checked on a real aiohttp server on 127.0.0.1 (an ephemeral port, in this process);
``serve`` and ``run`` in a child process running ``DEMO``, a small service on the scaffold, so
that signals and exit statuses are real.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import generate_latest

from systems import serving
from tests.integration.service_process import Proc, wait_for

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

# A service on the scaffold: GET /slow?s=SECONDS answers after that long, anything else 404.
# --hooks adds a ``ready`` and a ``drain`` that report on stderr (drain: seconds left to drain).
DEMO = """
import asyncio, sys, time
from aiohttp import web
from systems import serving

p = serving.argument_parser("demo")
p.add_argument("--listen", type=serving.parse_listen, required=True)
p.add_argument("--hooks", action="store_true")
a = p.parse_args()
in_flight = 0

async def handler(request: web.BaseRequest) -> web.StreamResponse:
    global in_flight
    if request.path != "/slow":
        return serving.error_response(404, "not_found", "no such path")
    in_flight += 1
    try:
        await asyncio.sleep(float(request.query["s"]))
    finally:
        in_flight -= 1
    return serving.json_response(200, b'{"slept":true}')

async def ready() -> None:
    print("ready", file=sys.stderr, flush=True)

async def drain(runner: web.ServerRunner, until: float) -> None:
    print(f"drain {until - time.monotonic():.1f}", file=sys.stderr, flush=True)
    await runner.cleanup()

async def service() -> None:
    hooks = {"ready": ready, "drain": drain} if a.hooks else {}
    await serving.serve(handler, *a.listen, **hooks)

sys.exit(serving.run("demo", service))
"""


def demo_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", DEMO, *args]


@pytest.fixture
def start_demo() -> Iterator[Callable[..., tuple[Proc, str]]]:
    started: list[Proc] = []

    def start(*args: str) -> tuple[Proc, str]:
        proc = Proc(demo_argv("--listen", "127.0.0.1:0", *args))
        started.append(proc)
        return proc, proc.wait_listening(timeout=20.0)[0]

    yield start
    for proc in started:
        proc.stop()


def get(addr: str, path: str, timeout: float = 20.0) -> tuple[int, bytes]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:65535", ("localhost", 65535)),
        (":80", ("", 80)),
    ],
)
def test_parse_listen(text: str, address: tuple[str, int]) -> None:
    assert serving.parse_listen(text) == address


@pytest.mark.parametrize("text", ["nohost", "127.0.0.1:", "h:65536", "h:-1", "h:x", "[::1]"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"^want HOST:PORT, got "):
        serving.parse_listen(text)


def test_int_in_bounds() -> None:
    assert serving.int_in(1, 3)("3") == 3
    assert serving.int_in(0)("123456789") == 123456789
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be between 1 and 3, got 4$"):
        serving.int_in(1, 3)("4")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be at least 0, got -1$"):
        serving.int_in(0)("-1")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^not an integer: '1.5'$"):
        serving.int_in(0)("1.5")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--n", "4"], "demo: error: argument --n: must be between 1 and 3, got 4\n"),
        (["--nn", "2"], "demo: error: unrecognized arguments: --nn 2\n"),
        (["--n"], "demo: error: argument --n: expected one argument\n"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = serving.argument_parser("demo")
    p.add_argument("--n", type=serving.int_in(1, 3))
    p.add_argument("--nnn", type=int)  # --nn would abbreviate it: refused
    with pytest.raises(SystemExit) as exited:
        p.parse_args(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err == line


@pytest.mark.integration
def test_a_bad_flag_exits_2_with_one_line_in_a_real_process() -> None:
    done = subprocess.run(
        demo_argv("--listen", "nohost"), cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr == "demo: error: argument --listen: want HOST:PORT, got 'nohost'\n"


# --- answers --------------------------------------------------------------------------------------


def test_error_body_is_the_compact_envelope() -> None:
    assert serving.error_body("not_found", "no such path") == (
        b'{"error":{"code":"not_found","message":"no such path"}}'
    )


def test_error_body_escapes_client_text() -> None:
    message = 'rounds: "x"\n is not <an> integer, caf\u00e9'
    body = serving.error_body("invalid_argument", message)
    assert b"\n" not in body
    assert b"\\u00e9" in body  # ASCII on the wire, as before the scaffold
    assert json.loads(body) == {"error": {"code": "invalid_argument", "message": message}}


Answer = tuple[int, dict[str, str], bytes]


def request_metrics(
    prefix: str, *, buckets: tuple[float, ...], known_codes: tuple[int, ...]
) -> serving.RequestMetrics:
    return serving.RequestMetrics(
        prefix,
        buckets=buckets,
        known_codes=known_codes,
        requests_help="Answers.",
        duration_help="Time.",
        in_flight_help="Now.",
    )


async def _answers(handler: serving.Handler, paths: list[str]) -> list[Answer]:
    runner = web.ServerRunner(web.Server(handler, access_log=None))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        answers = []
        async with aiohttp.ClientSession() as session:
            for path in paths:
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    answers.append((resp.status, dict(resp.headers), await resp.read()))
        return answers
    finally:
        await runner.cleanup()


def test_answers_on_a_real_server() -> None:
    metrics = request_metrics("demo", buckets=(0.1, 1.0), known_codes=(200,))

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/busy":
            return serving.error_response(
                503, "overloaded", "too busy, retry later", {"Retry-After": "1"}
            )
        if request.path == "/healthz":
            return serving.health_response()
        if request.path == "/metrics":
            return serving.metrics_response(metrics.registry)
        return serving.json_response(200, b'{"ok":true}')

    busy, health, scrape, ok = asyncio.run(
        _answers(handler, ["/busy", "/healthz", "/metrics", "/"])
    )
    status, headers, body = busy
    assert status == 503
    assert body == b'{"error":{"code":"overloaded","message":"too busy, retry later"}}'
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert headers["Retry-After"] == "1"
    assert health[0] == 200
    assert health[2] == b'{"status":"ok"}'
    assert health[1]["Content-Type"] == "application/json"
    assert scrape[0] == 200
    assert scrape[1]["Content-Type"].startswith("text/plain")
    assert b'demo_requests_total{code="200"} 0.0' in scrape[2]
    assert ok[:1] == (200,)
    assert ok[2] == b'{"ok":true}'


# --- metrics --------------------------------------------------------------------------------------


def test_request_metrics_names_and_counts() -> None:
    m = request_metrics("pat", buckets=(0.001, 0.01), known_codes=(200, 503))
    in_flight = [3]
    m.watch_in_flight(lambda: in_flight[0])
    sample = m.registry.get_sample_value
    assert sample("pat_requests_total", {"code": "503"}) == 0  # bound before first use
    m.count(200, 0.005)
    m.count(200, 0.0001)
    m.count(418, 1.0)  # a code not known up front gets its own child
    assert sample("pat_requests_total", {"code": "200"}) == 2
    assert sample("pat_requests_total", {"code": "418"}) == 1
    assert sample("pat_request_duration_seconds_count") == 3
    assert sample("pat_request_duration_seconds_bucket", {"le": "0.001"}) == 1
    assert sample("pat_request_duration_seconds_bucket", {"le": "0.01"}) == 2
    assert sample("pat_in_flight") == 3
    in_flight[0] = 0  # read at scrape time
    assert sample("pat_in_flight") == 0
    text = generate_latest(m.registry).decode()
    assert "_created" not in text
    assert "# HELP pat_requests_total Answers." in text


def test_each_request_metrics_has_its_own_registry() -> None:
    a = request_metrics("same", buckets=(1.0,), known_codes=())
    b = request_metrics("same", buckets=(1.0,), known_codes=())
    a.count(200, 0.1)
    assert b.registry.get_sample_value("same_requests_total", {"code": "200"}) is None


# --- start-up -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_raise_fd_limit_raises_the_soft_limit_and_never_lowers_it() -> None:
    code = (
        "import resource\n"
        "from systems import serving\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))\n"
        "serving.raise_fd_limit(100)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "serving.raise_fd_limit(10)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "serving.raise_fd_limit(2**40)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["100", "100", "True"]


def test_c_parsers_are_in_use_here() -> None:
    assert serving.c_parser_problem() is None
    assert serving.c_parser_problem(client=True) is None


@pytest.mark.integration
def test_run_refuses_the_pure_python_parser_with_one_line() -> None:
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    done = subprocess.run(
        demo_argv("--listen", "127.0.0.1:0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("demo: refusing to start: aiohttp's C HTTP request parser")
    assert done.stderr.count("\n") == 1


@pytest.mark.integration
def test_a_taken_address_exits_1_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            demo_argv("--listen", f"127.0.0.1:{port}"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stderr.startswith("demo: ")
    assert "address already in use" in done.stderr
    assert done.stderr.count("\n") == 1


# --- serve until told to stop -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_request_in_flight_finish_then_exits_0(
    start_demo: Callable[..., tuple[Proc, str]], sig: signal.Signals
) -> None:
    proc, addr = start_demo()
    assert get(addr, "/nope") == (
        404,
        b'{"error":{"code":"not_found","message":"no such path"}}',
    )
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, addr, "/slow?s=1")
        time.sleep(0.3)  # the request is in the handler
        sent = time.monotonic()
        proc.popen.send_signal(sig)
        assert slow.result(timeout=10) == (200, b'{"slept":true}')
    assert proc.popen.wait(timeout=10) == 0
    assert time.monotonic() - sent < 4
    with pytest.raises(ConnectionRefusedError):
        get(addr, "/nope", timeout=2)


@pytest.mark.integration
def test_the_drain_ends_5_s_after_the_signal(start_demo: Callable[..., tuple[Proc, str]]) -> None:
    proc, addr = start_demo()
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(get, addr, "/slow?s=30")
        time.sleep(0.3)
        sent = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=15) == 0
        waited = time.monotonic() - sent
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            stuck.result(timeout=5)  # closed unanswered
    assert 4.5 < waited < 8


@pytest.mark.integration
def test_ready_runs_before_the_listening_line_and_drain_gets_the_deadline(
    start_demo: Callable[..., tuple[Proc, str]],
) -> None:
    proc, addr = start_demo("--hooks")
    assert get(addr, "/slow?s=0")[0] == 200
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0
    assert wait_for(lambda: any(line.startswith("drain") for line in proc.log), timeout=5)
    lines = [line.split()[0] for line in proc.log]
    assert lines == ["ready", "listening", "drain"]
    seconds_left = float(proc.log[2].split()[1])
    assert 4.0 <= seconds_left <= 5.0
