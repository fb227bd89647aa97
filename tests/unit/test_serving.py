"""The shared serving scaffold (systems/serving.py): flags, the envelope, metrics, serve and run.

Answers are checked on a real aiohttp server on 127.0.0.1 (an ephemeral port, in this process);
``serve`` and ``run`` in a child process running ``DEMO``, a small service on the scaffold, so
that signals and exit statuses are real.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from unittest import mock

import aiohttp
import pytest
from aiohttp import http_exceptions, http_parser, web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest

from bench.launch.http_raw import RawResponse, exchange
from systems import http_limits, serving
from tests.integration.service_process import Proc, wait_for

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

# A service on the scaffold: GET /slow?s=SECONDS answers after that long, GET /block?s=SECONDS
# holds the event loop that long, anything else 404.
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
    if request.path == "/block":  # holds the event loop, as a kernel run inline does
        time.sleep(float(request.query["s"]))
        return serving.json_response(200, b'{"blocked":true}')
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


async def _answers(handler: http_limits.Handler, paths: list[str]) -> list[Answer]:
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


# --- malformed and oversized requests -------------------------------------------------------------


def _parse_error(data: bytes) -> BaseException:
    """What aiohttp's C parser, set up as the scaffold sets it up, raises on ``data``."""
    parser = http_parser.HttpRequestParserC(
        mock.Mock(),
        asyncio.new_event_loop(),
        2**16,
        max_line_size=http_limits.MAX_TARGET_READ_BYTES,
        max_field_size=http_limits.MAX_HEADER_BYTES,
        max_headers=http_limits.MAX_HEADER_FIELDS,
    )
    with pytest.raises(http_exceptions.HttpProcessingError) as err:
        parser.feed_data(data)
    return err.value


H = b"Host: x\r\n"


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (b"\x00\x01 not HTTP\r\n\r\n", http_limits.BAD_REQUEST),
        (b"hello world\r\n\r\n", http_limits.BAD_REQUEST),
        (b"\x16\x03\x01\x02\x00\x01\x00", http_limits.BAD_REQUEST),  # TLS on the HTTP port
        (b"FOO / HTTP/1.1\r\n" + H + b"\r\n", http_limits.UNKNOWN_METHOD),
        (b"get / HTTP/1.1\r\n" + H + b"\r\n", http_limits.UNKNOWN_METHOD),
        (b"GETTTTTT / HTTP/1.1\r\n" + H + b"\r\n", http_limits.UNKNOWN_METHOD),
        (b"FOO * HTTP/1.1\r\n" + H + b"\r\n", http_limits.UNKNOWN_METHOD),
        (b"FOO / HTTP/9.9\r\n" + H + b"\r\n", http_limits.VERSION_NOT_SUPPORTED),
        (b"FOO / HTTP/1.5\r\n" + H + b"\r\n", http_limits.VERSION_NOT_SUPPORTED),
        (b"FOO nopath HTTP/1.1\r\n" + H + b"\r\n", http_limits.BAD_REQUEST),
        (b"FOO /a%zz HTTP/1.1\r\n" + H + b"\r\n", http_limits.BAD_REQUEST),
        (b"F(O / HTTP/1.1\r\n" + H + b"\r\n", http_limits.BAD_REQUEST),
        (b"GET / HTTP/9.9\r\n" + H + b"\r\n", http_limits.VERSION_NOT_SUPPORTED),
        (b"GET / HTTP/1.5\r\n" + H + b"\r\n", http_limits.VERSION_NOT_SUPPORTED),
        (b"GET / HTTP/x.y\r\n" + H + b"\r\n", http_limits.BAD_REQUEST),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http_limits.VERSION_NOT_SUPPORTED),
        (
            b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n" + H + b"\r\n",
            http_limits.HEADERS_TOO_LARGE,
        ),
        (
            b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 20000 + b"\r\n\r\n",
            http_limits.HEADERS_TOO_LARGE,
        ),
        (b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 100 + b"\r\n", http_limits.HEADERS_TOO_LARGE),
        (b"GET / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", http_limits.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\n\r\n", http_limits.BAD_REQUEST),  # no Host
        (
            b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            http_limits.TRANSFER_ENCODING,
        ),
        (
            b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n",
            http_limits.TRANSFER_ENCODING,
        ),
    ],
)
def test_parse_errors_get_the_contracts_answer(data: bytes, refusal: http_limits.Refusal) -> None:
    assert http_limits.parse_error_refusal(_parse_error(data)) is refusal


@pytest.mark.parametrize(
    ("method", "target", "headers", "refusal"),
    [
        ("GET", "/x", {}, None),
        ("GET", "http://x/x?a=%zz", {}, None),
        ("PATCH", "/x", {"Expect": "100-Continue"}, None),
        ("GET", "/x", {"Host": "a b"}, http_limits.BAD_REQUEST),
        ("GET", "/x", {"Expect": "something"}, http_limits.EXPECTATION_FAILED),
        ("PROPFIND", "/x", {}, http_limits.UNKNOWN_METHOD),
        ("CONNECT", "x:80", {}, http_limits.BAD_TARGET),
        ("OPTIONS", "*", {}, http_limits.BAD_TARGET),
        ("GET", "/" + "a" * (http_limits.MAX_TARGET_BYTES - 1), {}, None),
        ("GET", "/" + "a" * http_limits.MAX_TARGET_BYTES, {}, http_limits.TARGET_TOO_LONG),
        ("GET", "/" + "a" * http_limits.MAX_TARGET_READ_BYTES, {}, http_limits.HEADERS_TOO_LARGE),
        ("GET", "/a%zz", {}, http_limits.BAD_REQUEST),
        ("GET", "/a?b=%zz", {}, None),  # Go checks the path's escapes, not the query's
        ("POST", "/x", {"Transfer-Encoding": "chunked"}, http_limits.TRANSFER_ENCODING),
        # Host (5 bytes) + "X-Big" (5) + value: 16,384 bytes in all, then one more.
        ("GET", "/x", {"X-Big": "v" * (http_limits.MAX_HEADER_BYTES - 10)}, None),
        (
            "GET",
            "/x",
            {"X-Big": "v" * (http_limits.MAX_HEADER_BYTES - 9)},
            http_limits.HEADERS_TOO_LARGE,
        ),
        ("GET", "/x", {f"X-{i}": "v" for i in range(99)}, None),
        ("GET", "/x", {f"X-{i}": "v" for i in range(100)}, http_limits.HEADERS_TOO_LARGE),
    ],
)
def test_refusal_of_a_parsed_head(
    method: str, target: str, headers: dict[str, str], refusal: http_limits.Refusal | None
) -> None:
    request = make_mocked_request(method, target, headers={"Host": "x", **headers})
    assert http_limits.refusal(request) is refusal


def test_every_refusal_is_the_envelope_with_a_close() -> None:
    refusals = [v for v in vars(http_limits).values() if isinstance(v, http_limits.Refusal)]
    assert len(refusals) == 8
    for refusal in refusals:
        assert json.loads(refusal.body) == {
            "error": {"code": refusal.code, "message": refusal.message}
        }
        response = refusal.response()
        assert response.status == refusal.status
        assert response.content_type == "application/json"
        assert response.keep_alive is False


def start_demo_with(env: dict[str, str]) -> tuple[Proc, str]:
    proc = Proc(demo_argv("--listen", "127.0.0.1:0"), env=env)
    return proc, proc.wait_listening(timeout=20.0)[0]


def _exchange(addr: str, raw: bytes) -> RawResponse:
    host, port = addr.rsplit(":", 1)
    return exchange(host, int(port), raw, timeout=10)


@pytest.mark.integration
def test_malformed_requests_get_the_envelope_and_leave_no_traceback() -> None:
    proc, addr = start_demo_with({})
    try:
        cases = [
            (b"\x00\x01 not HTTP\r\n\r\n", 400),
            (b"GET /slow?s=0 HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400),
            (b"FOO /slow?s=0 HTTP/1.1\r\n" + H + b"\r\n", 501),
            (b"GET /slow?s=0 HTTP/9.9\r\n" + H + b"\r\n", 505),
            (b"GET /slow?s=0 HTTP/2.0\r\n" + H + b"\r\n", 505),
            (b"GET /?q=" + b"x" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
            (b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 1000 + b"\r\n", 431),
            (b"GET / HTTP/1.1\r\n" + H + b"Expect: x\r\n\r\n", 417),
        ]
        for raw, status in cases * 3:
            answer = _exchange(addr, raw)
            assert answer.status == status
            assert answer.header("Content-Type") == "application/json"
            assert answer.header("Connection") == "close"
            body = json.loads(answer.body)
            assert set(body["error"]) == {"code", "message"}
            assert b"not HTTP" not in answer.body
            assert b"abc" not in answer.body
        assert _exchange(addr, b"GET /slow?s=0 HTTP/1.1\r\n" + H + b"\r\n").status == 200
        time.sleep(0.2)
        assert [line.split()[0] for line in proc.log] == ["listening"]
    finally:
        proc.stop()


def _closed_after(sock: socket.socket, limit: float, dribble: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` unanswered, sending ``dribble`` a byte at a
    time every 0.25 s meanwhile (a slow loris); fails after ``limit`` seconds."""
    start = time.monotonic()
    sock.settimeout(0.25)
    sent = 0
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            if sent < len(dribble):
                with contextlib.suppress(OSError):
                    sock.sendall(dribble[sent : sent + 1])
                sent += 1
            continue
        except ConnectionResetError:
            data = b""
        assert data == b"", f"answered {data[:80]!r}"
        return time.monotonic() - start
    pytest.fail(f"still open after {limit} s")


@pytest.mark.integration
def test_a_slow_loris_is_closed_after_5_s() -> None:
    proc, addr = start_demo_with({})
    try:
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /slow?s=0 HTTP/1.1\r\n")
            took = _closed_after(sock, 10, dribble=b"Host: x\r\nX-Slow: " + b"z" * 100)
        assert http_limits.HEADER_TIMEOUT_S - 0.5 < took < 7
    finally:
        proc.stop()


@pytest.mark.integration
def test_the_header_timeout_runs_from_the_first_byte_of_each_request() -> None:
    proc, addr = start_demo_with(
        {http_limits.HEADER_TIMEOUT_ENV: "1", http_limits.IDLE_TIMEOUT_ENV: "30"}
    )
    try:
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:  # silent: closed after 1 s
            assert 0.7 < _closed_after(sock, 5) < 2.5
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /slow?s=0 HTTP/1.1\r\n" + H + b"\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(1.5)  # idle, not reading a head: kept
            sock.sendall(b"GET /slow?s=0 HTTP/1.1\r\n")
            assert 0.7 < _closed_after(sock, 5) < 2.5
    finally:
        proc.stop()


@pytest.mark.integration
def test_an_idle_connection_is_closed_after_the_idle_timeout() -> None:
    proc, addr = start_demo_with({http_limits.IDLE_TIMEOUT_ENV: "1.5"})
    try:
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /slow?s=0 HTTP/1.1\r\n" + H + b"\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            assert 1.2 < _closed_after(sock, 5) < 3.5
    finally:
        proc.stop()


@pytest.mark.integration
def test_a_bad_timeout_in_the_environment_is_one_line_and_exit_1() -> None:
    done = subprocess.run(
        demo_argv("--listen", "127.0.0.1:0"),
        cwd=ROOT,
        env={**os.environ, http_limits.IDLE_TIMEOUT_ENV: "soon"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"demo: {http_limits.IDLE_TIMEOUT_ENV} must be a positive number of seconds, got 'soon'\n"
    )


@pytest.mark.integration
def test_a_head_sent_in_time_is_read_even_when_the_loop_was_held_past_the_timeout() -> None:
    proc, addr = start_demo_with({http_limits.HEADER_TIMEOUT_ENV: "1"})
    try:
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as waiting:
            time.sleep(0.3)  # accepted: its header time-out runs
            with ThreadPoolExecutor(1) as pool:
                blocked = pool.submit(get, addr, "/block?s=2.5")
                time.sleep(0.5)  # the loop is held now
                waiting.sendall(b"GET /slow?s=0 HTTP/1.1\r\n" + H + b"\r\n")
                assert blocked.result(timeout=10)[0] == 200
            # The time-out fell due while the loop was held, the head unread in the socket:
            # the loop reads its sockets before it runs its timers again, so the head that
            # came in time is answered, not cut off.
            assert waiting.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        proc.stop()
