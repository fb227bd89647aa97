"""Raw HTTP exchanges (bench/launch/http_raw.py): the request syntax, the answer parser, and
``exchange`` against a real socket server on 127.0.0.1 (a thread of this process)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from bench.launch.http_raw import (
    MAX_RAW_BYTES,
    RawHttpError,
    RawResponse,
    exchange,
    expand,
    parse_response,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"),
        ("{x*5}", b"xxxxx"),
        ("a{bc*3}d", b"abcbcbcd"),
        ("{X-A: b\r\n*2}", b"X-A: b\r\nX-A: b\r\n"),
        ("{x*0}", b""),
        ("{{}}", b"{}"),
        ("{{x*3}}", b"{x*3}"),
        ("{**2}", b"**"),  # the last * before the count separates it
        ("\u0000\u00ff", b"\x00\xff"),
    ],
)
def test_expand(text: str, expected: bytes) -> None:
    assert expand(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{x}", "a lone '{'"),
        ("a}b", "a lone '}'"),
        ("{x*}", "a lone '{'"),
        ("caf\u0113", r"character 3 is 'ē': a raw request holds U\+0000"),
        (f"{{x*{MAX_RAW_BYTES + 1}}}", "more than"),
        (f"{{xx*{MAX_RAW_BYTES // 2}}}{{y*1}}", "more than"),
    ],
)
def test_expand_refuses(text: str, error: str) -> None:
    with pytest.raises(RawHttpError, match=error):
        expand(text)


def test_parse_a_complete_answer() -> None:
    data = b"HTTP/1.1 431 Too Large\r\nContent-Type: application/json\r\n"
    data += b"Content-Length: 2\r\n\r\n{}"
    parsed = parse_response(data + b"next", eof=False)
    assert parsed == (
        RawResponse(
            431,
            "Too Large",
            (("Content-Type", "application/json"), ("Content-Length", "2")),
            b"{}",
        ),
        len(data),
    )
    assert parsed[0].header("content-type") == "application/json"
    assert parsed[0].header("X-None") is None


def test_parse_waits_for_the_whole_answer() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"
    assert parse_response(data, eof=False) is None
    assert parse_response(b"HTTP/1.1 200 OK\r\nContent-Len", eof=False) is None
    with pytest.raises(RawHttpError, match="closed in an answer"):
        parse_response(data, eof=True)
    with pytest.raises(RawHttpError, match="closed without an answer"):
        parse_response(b"", eof=True)


def test_parse_chunked_until_close_head_and_interim_answers() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    assert parse_response(chunked, eof=False) == (
        RawResponse(200, "OK", (("Transfer-Encoding", "chunked"),), b"abcde"),
        len(chunked),
    )
    assert parse_response(chunked[:-2], eof=False) is None
    to_close = b"HTTP/1.0 200 OK\r\n\r\nall of it"
    assert parse_response(to_close, eof=False) is None
    assert parse_response(to_close, eof=True) == (RawResponse(200, "OK", (), b"all of it"), 28)
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n"
    assert parse_response(head, eof=False, head=True) == (
        RawResponse(404, "Not Found", (("Content-Length", "10"),), b""),
        len(head),
    )
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    final = b"HTTP/1.1 204 No Content\r\n\r\n"
    assert parse_response(interim + final, eof=False) == (
        RawResponse(204, "No Content", (), b""),
        len(interim + final),
    )


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 99 Low\r\n\r\n",
    ],
)
def test_parse_refuses_what_is_not_http(data: bytes) -> None:
    with pytest.raises(RawHttpError):
        parse_response(data, eof=True)


Serve = Callable[[socket.socket], None]


@pytest.fixture
def server() -> Iterator[Callable[[Serve], int]]:
    """A one-connection TCP server on 127.0.0.1 that runs ``serve(conn)`` in a thread."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(serve: Serve) -> int:
        ln = socket.create_server(("127.0.0.1", 0))
        listeners.append(ln)

        def run() -> None:
            conn, _ = ln.accept()
            with conn:
                serve(conn)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
        return int(ln.getsockname()[1])

    yield start
    for t in threads:
        t.join(timeout=5)
    for ln in listeners:
        ln.close()


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_exchange_sends_the_bytes_and_reads_the_answer(server: Callable[[Serve], int]) -> None:
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        seen.append(read_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    port = server(serve)
    answer = exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert (answer.status, answer.body) == (200, b"ok")
    assert seen == [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]


def test_exchange_hears_an_answer_sent_before_the_request_was_read(
    server: Callable[[Serve], int],
) -> None:
    def serve(conn: socket.socket) -> None:
        conn.recv(1024)  # a little of the 8 MiB, then answer and close unread
        conn.sendall(b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    port = server(serve)
    answer = exchange("127.0.0.1", port, b"GET /" + b"x" * (8 << 20), timeout=10)
    assert answer.status == 431


def test_exchange_reports_a_silent_close_and_a_silent_server(
    server: Callable[[Serve], int],
) -> None:
    port = server(lambda conn: None)
    with pytest.raises(RawHttpError, match="closed without an answer"):
        exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\n\r\n", timeout=5)
    release = threading.Event()

    def hold(conn: socket.socket) -> None:
        release.wait(5)

    port = server(hold)
    try:
        with pytest.raises(RawHttpError, match=r"no answer within 0\.3 s"):
            exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\n\r\n", timeout=0.3)
    finally:
        release.set()
