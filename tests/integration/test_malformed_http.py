"""Malformed and oversized requests get the same answer from both implementations of a pattern.

Each pattern's Python and Go services run as real processes on 127.0.0.1; every raw case of the
pattern's vectors (and a few more) is sent to both over a fresh connection, and the two answers
must agree: status, error code, ``Content-Type: application/json``, ``Connection: close``. The
differences the contracts document ("Malformed and oversized requests" in systems/*/README.md)
are pinned here too, and so are the header-read and idle time-outs, which both scaffolds read
from the same environment variables. Fan-out runs without backends: no case reaches one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.launch.http_raw import RawResponse, exchange, expand
from bench.launch.probes import HttpExpect, HttpRequest
from bench.launch.verify import case_parts, load_vectors
from systems import http_limits
from tests.integration.service_process import Proc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
NO_BACKEND = "http://127.0.0.1:9"


def argv(pattern: str, language: str) -> list[str]:
    if pattern == "fanout":
        flags = ["--listen", "127.0.0.1:0", "--replicas", NO_BACKEND]
        if language == "python":
            return [sys.executable, "-m", "systems.fanout.service", *flags]
        return [str(ROOT / "go" / "bin" / "fanout"), *flags]
    flags = ["--listen", "127.0.0.1:0", "--workers", "1"]
    if language == "python":
        return [sys.executable, "-m", "systems.workerpool.service", "--pool", "sync", *flags]
    return [str(ROOT / "go" / "bin" / "workerpool"), *flags]


Services = dict[tuple[str, str], tuple[Proc, str]]


def start_all(env: dict[str, str] | None = None) -> Services:
    procs: Services = {}
    try:
        for pattern in ("fanout", "workerpool"):
            for language in ("python", "go"):
                proc = Proc(argv(pattern, language), env=env)
                procs[pattern, language] = (proc, proc.wait_listening(timeout=20.0)[0])
    except BaseException:
        for proc, _ in procs.values():
            proc.stop()
        raise
    return procs


@pytest.fixture(scope="module")
def services(go_binaries: None) -> Iterator[Services]:
    procs = start_all()
    yield procs
    for proc, _ in procs.values():
        proc.stop()


def send(addr: str, raw: bytes) -> RawResponse:
    host, port = addr.rsplit(":", 1)
    return exchange(host, int(port), raw, timeout=15)


def summary(answer: RawResponse) -> tuple[int, str | None, str | None, str | None]:
    """Status, error code (None for a success), Content-Type and Connection of an answer."""
    code = None
    if answer.status >= 400:
        error = json.loads(answer.body)["error"]
        assert set(error) == {"code", "message"}
        assert isinstance(error["message"], str)
        assert error["message"]
        code = error["code"]
    connection = answer.header("Connection")
    return answer.status, code, answer.header("Content-Type"), connection


def raw_cases(pattern: str) -> list[tuple[str, str, int]]:
    vectors = load_vectors(ROOT / "systems" / pattern / "vectors.json")
    return [
        (name, request.raw, expect.status)
        for name, request, expect in case_parts(vectors, HttpRequest, HttpExpect, "http")
        if request.raw is not None
    ]


H = "Host: x\r\n"
#: More cases than the vectors hold: other paths and methods on the same limits.
CHUNKED = "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
EXTRA = [
    ("a chunked POST to the catalog", "POST /catalog/a HTTP/1.1\r\n" + H + CHUNKED, 400),
    ("FOO on an unknown path", "FOO /nope HTTP/1.1\r\n" + H + "\r\n", 501),
    ("a 9 KiB item id", "GET /catalog/{a*9000} HTTP/1.1\r\n" + H + "\r\n", 414),
    ("a 9 KiB work query", "GET /work?kernel=spin&x={a*9000} HTTP/1.1\r\n" + H + "\r\n", 414),
    ("101 fields on POST", "POST /work HTTP/1.1\r\n" + H + "{X-A: b\r\n*100}\r\n", 431),
    ("a 1.1 MiB field", "GET /healthz HTTP/1.1\r\n" + H + "X-Big: {y*1153434}\r\n\r\n", 431),
    ("HEAD with a bad version", "HEAD /healthz HTTP/3.0\r\n" + H + "\r\n", 505),
    ("lower-case HTTP", "GET /healthz http/1.1\r\n" + H + "\r\n", 400),
    ("TRACE", "TRACE /nope HTTP/1.1\r\n" + H + "\r\n", 404),
    ("an absolute-form target", "GET http://x/healthz HTTP/1.1\r\n" + H + "\r\n", 200),
]


@pytest.mark.parametrize("pattern", ["fanout", "workerpool"])
def test_both_implementations_answer_every_malformed_case_alike(
    services: Services, pattern: str
) -> None:
    disagreements = []
    for name, raw, status in [*raw_cases(pattern), *EXTRA]:
        data = expand(raw)
        python = summary(send(services[pattern, "python"][1], data))
        go = summary(send(services[pattern, "go"][1], data))
        if python != go or python[0] != status:
            disagreements.append(f"{name}: python {python}, go {go}, expected {status}")
            continue
        if status >= 400:  # the scaffolds' refusals close; the services' 404 and 405 need not
            assert python[2:] == ("application/json", "close" if status not in (404, 405) else None)
    assert disagreements == []


#: The differences the contracts document: (case, raw, Python's status, Go's status).
DIFFERENCES = [
    (
        "a folded field (obs-fold)",
        "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\r\n b\r\n\r\n",
        400,
        200,
    ),
    ("bare LF line ends", "GET /healthz HTTP/1.1\nHost: x\n\n", 400, 200),
    ("no HTTP version (HTTP/0.9's form)", "GET /healthz\r\n\r\n", 505, 400),
    ("Transfer-Encoding in HTTP/1.0", "POST /healthz HTTP/1.0\r\n" + CHUNKED, 400, 405),
    (
        "two equal Content-Lengths",
        "POST /healthz HTTP/1.1\r\n" + H + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na",
        400,
        405,
    ),
    ("an empty line before the request", "\r\nGET /healthz HTTP/1.1\r\n" + H + "\r\n", 200, 400),
]


@pytest.mark.parametrize(("name", "raw", "python_status", "go_status"), DIFFERENCES)
def test_the_documented_differences(
    services: Services, name: str, raw: str, python_status: int, go_status: int
) -> None:
    for pattern in ("fanout", "workerpool"):
        for language, status in (("python", python_status), ("go", go_status)):
            answer = send(services[pattern, language][1], expand(raw))
            got = summary(answer)
            assert got[0] == status, f"{pattern} {language}: {got}"
            if status >= 400:
                assert got[2] == "application/json"


def test_python_logs_nothing_for_malformed_requests(services: Services) -> None:
    for pattern in ("fanout", "workerpool"):
        for _, raw, _ in raw_cases(pattern):
            send(services[pattern, "python"][1], expand(raw))
        time.sleep(0.3)
        log = services[pattern, "python"][0].log
        assert [line.split()[0] for line in log] == ["listening"], "".join(log)[:2000]


def closed_after(addr: str, first: bytes, limit: float, *, dribble: bytes = b"") -> float:
    """Seconds until the server closes a connection unanswered after ``first`` is sent and
    ``dribble`` follows a byte every 0.2 s (a slow loris)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(0.2)
        if first:
            sock.sendall(first)
        start, sent = time.monotonic(), 0
        while time.monotonic() - start < limit:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if sent < len(dribble):
                    with contextlib.suppress(OSError):
                        sock.sendall(dribble[sent : sent + 1])
                    sent += 1
                continue
            except ConnectionResetError:
                data = b""
            if data.startswith(b"HTTP/1.1 200"):  # the answer to ``first``: now idle
                start = time.monotonic()
                continue
            assert data == b"", f"answered {data[:80]!r}"
            return time.monotonic() - start
    pytest.fail(f"still open after {limit} s")


@pytest.fixture(scope="module")
def short_timeouts(go_binaries: None) -> Iterator[Services]:
    procs = start_all({http_limits.HEADER_TIMEOUT_ENV: "1", http_limits.IDLE_TIMEOUT_ENV: "2"})
    yield procs
    for proc, _ in procs.values():
        proc.stop()


@pytest.mark.parametrize("language", ["python", "go"])
def test_both_close_slow_heads_and_idle_connections_alike(
    short_timeouts: Services, language: str
) -> None:
    addr = short_timeouts["fanout", language][1]
    loris = b"Host: x\r\nX-Slow: " + b"z" * 50
    assert 0.7 < closed_after(addr, b"", 5) < 2.5  # silent from the start
    assert 0.7 < closed_after(addr, b"GET /healthz HTTP/1.1\r\n", 5, dribble=loris) < 2.5
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    assert 1.7 < closed_after(addr, health, 6) < 3.5  # idle after an answer


def test_a_partial_request_pipelined_behind_another_is_closed_at_the_documented_time(
    short_timeouts: Services,
) -> None:
    pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo"
    go = closed_after(short_timeouts["fanout", "go"][1], pipelined, 6)
    python = closed_after(short_timeouts["fanout", "python"][1], pipelined, 6)
    assert 0.7 < go < 2.5  # the header time-out (1 s) from its first byte
    assert 1.7 < python < 3.5  # the idle time-out (2 s) after the first answer
