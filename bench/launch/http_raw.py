"""Raw HTTP/1.x exchanges: requests no well-behaved client sends, answers read byte by byte.

Test vectors use them for malformed and oversized requests (a garbled request line, both
Content-Length and Transfer-Encoding, a 100 KiB header); the contract tests and the fuzz tests
(``tests/integration``) use them too. A raw request is written as a string:

- each character U+0000 to U+00FF is one byte, so that a JSON string spells any byte
  (``"\\r\\n"``, ``"\\u0000"``); a character above U+00FF is an error;
- ``{TEXT*N}`` stands for TEXT repeated N times (TEXT without braces, N decimal), so that a
  100 KiB query needs no 100 KiB of JSON: ``"GET /healthz?q={x*102400} HTTP/1.1\\r\\n..."``,
  and 1,000 header fields are ``"{X-A: b\\r\\n*1000}"``;
- ``{{`` and ``}}`` are a literal ``{`` and ``}``.

``exchange`` sends the bytes on a fresh connection while reading, so that a server that answers
before it has read everything (and closes) is heard, and returns the first final answer.
"""

from __future__ import annotations

import re
import selectors
import socket
import time
from dataclasses import dataclass

#: The most bytes one raw request may expand to.
MAX_RAW_BYTES = 16 << 20

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\*(\d+)\}|[{}]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([^\r\n]*))?")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*?)[ \t]*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)(?:;[^\r\n]*)?")


class RawHttpError(Exception):
    """A raw request that cannot be expanded, or an answer that is not valid HTTP/1.x."""


def expand(text: str) -> bytes:
    """The bytes a raw request string stands for (see the module's documentation)."""
    out: list[str] = []
    size = 0
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.start()])
        size += m.start() - pos
        token = m.group(0)
        if token in ("{{", "}}"):
            piece = token[0]
        elif token in ("{", "}"):
            raise RawHttpError(
                f"a lone {token!r} at character {m.start()}: write {token * 2!r} for a brace,"
                " {TEXT*N} for a repetition"
            )
        else:
            count = int(m.group(2))
            if size + len(m.group(1)) * count > MAX_RAW_BYTES:
                raise RawHttpError(f"expands to more than {MAX_RAW_BYTES} bytes")
            piece = m.group(1) * count
        out.append(piece)
        size += len(piece)
        if size > MAX_RAW_BYTES:
            raise RawHttpError(f"expands to more than {MAX_RAW_BYTES} bytes")
        pos = m.end()
    out.append(text[pos:])
    try:
        return "".join(out).encode("latin-1")
    except UnicodeEncodeError:
        at = next(i for i, c in enumerate(text) if ord(c) > 0xFF)
        raise RawHttpError(
            f"character {at} is {text[at]!r}: a raw request holds U+0000 to U+00FF only"
        ) from None


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One HTTP/1.x answer as it came: status, reason, fields in order, body (de-chunked)."""

    status: int
    reason: str
    fields: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of field ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.fields if k.lower() == lowered), None)


def parse_response(data: bytes, *, eof: bool, head: bool = False) -> tuple[RawResponse, int] | None:
    """The first final answer in ``data`` and the bytes it took, or None while it is incomplete.

    1xx answers before it are skipped. ``eof``: the server has closed (a body without a length
    ends there); ``head``: the request was HEAD (the answer has no body). Raises RawHttpError
    when the bytes are not a valid answer, or when ``eof`` comes before one is complete.
    """
    start = 0
    while True:
        parsed = _parse_one(data, start, eof=eof, head=head)
        if parsed is None:
            if eof and start == len(data):
                raise RawHttpError("closed without an answer")
            if eof:
                raise RawHttpError(f"closed in an answer: {data[start : start + 80]!r}")
            return None
        response, end = parsed
        if response.status >= 200:
            return response, end
        start = end  # 100 Continue and the like


def _parse_one(data: bytes, start: int, *, eof: bool, head: bool) -> tuple[RawResponse, int] | None:
    head_end = data.find(b"\r\n\r\n", start)
    if head_end < 0:
        if len(data) - start > 1 << 20:
            raise RawHttpError("an answer head over 1 MiB")
        return None
    lines = data[start:head_end].split(b"\r\n")
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        raise RawHttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(m.group(1))
    fields = []
    for line in lines[1:]:
        f = _FIELD.fullmatch(line)
        if f is None:
            raise RawHttpError(f"not a header field: {line[:80]!r}")
        fields.append((f.group(1).decode("latin-1"), f.group(2).decode("latin-1")))
    response = RawResponse(status, (m.group(2) or b"").decode("latin-1"), tuple(fields), b"")
    body_start = head_end + 4
    if head or status < 200 or status in (204, 304):
        return response, body_start
    if (te := response.header("Transfer-Encoding")) is not None:
        if te.lower() != "chunked":
            raise RawHttpError(f"a transfer coding other than chunked: {te!r}")
        return _dechunk(data, body_start, response, eof=eof)
    length = response.header("Content-Length")
    if length is None:
        if not eof:
            return None  # the body runs to the close
        return _with_body(response, data[body_start:]), len(data)
    if not length.isdigit():
        raise RawHttpError(f"a bad Content-Length: {length!r}")
    end = body_start + int(length)
    if len(data) < end:
        return None
    return _with_body(response, data[body_start:end]), end


def _dechunk(
    data: bytes, pos: int, response: RawResponse, *, eof: bool
) -> tuple[RawResponse, int] | None:
    body = bytearray()
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        m = _CHUNK_SIZE.fullmatch(data[pos:line_end])
        if m is None:
            raise RawHttpError(f"a bad chunk size line: {data[pos:line_end][:80]!r}")
        size = int(m.group(1), 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", pos)  # no trailers from these servers
            if trailer_end < 0:
                return None
            return _with_body(response, bytes(body)), trailer_end + 2
        if len(data) < pos + size + 2:
            return None
        body += data[pos : pos + size]
        if data[pos + size : pos + size + 2] != b"\r\n":
            raise RawHttpError("a chunk not followed by CRLF")
        pos += size + 2


def _with_body(response: RawResponse, body: bytes) -> RawResponse:
    return RawResponse(response.status, response.reason, response.fields, body)


def exchange(
    host: str, port: int, data: bytes, *, timeout: float = 10.0, head: bool = False
) -> RawResponse:
    """Send ``data`` on a fresh connection, reading meanwhile; the first final answer.

    Sending stops when the server stops reading (its answer may be on the way all the same).
    Raises RawHttpError when no valid answer comes within ``timeout`` seconds or the
    connection closes first; OSError when the server cannot be reached.
    """
    deadline = time.monotonic() + timeout
    received = bytearray()
    sent = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while True:
                left = deadline - time.monotonic()
                ready = selector.select(left) if left > 0 else []
                if not ready:
                    raise RawHttpError(f"no answer within {timeout} s")
                events = ready[0][1]
                if events & selectors.EVENT_WRITE:
                    try:
                        sent += sock.send(data[sent : sent + 65536])
                    except (BrokenPipeError, ConnectionResetError):
                        sent = len(data)  # the server stopped reading
                    if sent >= len(data):
                        selector.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    received += chunk
                    parsed = parse_response(bytes(received), eof=not chunk, head=head)
                    if parsed is not None:
                        return parsed[0]
