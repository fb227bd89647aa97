"""The limits on a request's head and the answers to malformed requests, the same numbers and
messages as ``go/internal/serve`` (limits.go); the contracts' section "Malformed and oversized
requests" (systems/*/README.md) is the reference. ``systems.serving.serve`` puts every request
through ``refusal`` and serves with ``Server``, whose connections also close a head not read
within the header timeout and an idle keep-alive connection.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import itertools
import os
import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import (
    HttpVersion10,
    HttpVersion11,
    hdrs,
    http_exceptions,
    http_parser,
    streams,
    web,
    web_protocol,
)
from aiohttp.abc import AbstractStreamWriter
from aiohttp.log import server_logger

from systems.answers import error_body, json_response

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# --- malformed and oversized requests -----------------------------------------------------------
#
# The limits on a request's head, the same in go/internal/serve (limits.go); the contracts'
# section "Malformed and oversized requests" (systems/*/README.md) is the reference. A request
# that breaks one is answered here, before the service's handler, with the envelope and
# ``Connection: close``; it is not counted in the service's metrics.

#: A request target (path and query) longer than this is answered 414.
MAX_TARGET_BYTES: Final = 8192
#: ... and one longer than this 431, as a head too large to read (aiohttp's ``max_line_size``;
#: Go reads at most 1 MiB + 32 KiB of head in all, so both refuse such a target the same way).
MAX_TARGET_READ_BYTES: Final = 1 << 20
#: More header fields than this (Host included) is answered 431.
MAX_HEADER_FIELDS: Final = 100
#: So is a header section whose names and values add up to more bytes than this.
MAX_HEADER_BYTES: Final = 16384
#: The methods served; any other is answered 501 (CONNECT: 400, no target here is an authority).
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"}
)
#: A connection that has not sent a whole request head this long after it opened (or after the
#: first byte of a later request) is closed unanswered: Go's ``ReadHeaderTimeout``.
HEADER_TIMEOUT_S: Final = 5.0
#: An idle keep-alive connection is closed after this long: Go's ``IdleTimeout``. Longer than
#: any client here keeps an idle connection (90 s), so a client never reuses one being closed.
IDLE_TIMEOUT_S: Final = 120.0
#: Environment variables that override the two time-outs (seconds), for tests; Go reads them too.
HEADER_TIMEOUT_ENV: Final = "PATTERNBENCH_HEADER_TIMEOUT_S"
IDLE_TIMEOUT_ENV: Final = "PATTERNBENCH_IDLE_TIMEOUT_S"


class Refusal:
    """A fixed answer to a malformed or oversized request: the envelope, then the close."""

    __slots__ = ("body", "code", "message", "status")

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        self.body = error_body(code, message)

    def response(self) -> web.Response:
        resp = json_response(self.status, self.body)
        resp.force_close()
        return resp


# The messages are Go's too (go/internal/serve/limits.go), word for word.
BAD_REQUEST: Final = Refusal(400, "bad_request", "malformed request")
BAD_TARGET: Final = Refusal(
    400, "bad_request", "the request target must be a path (origin-form or absolute-form)"
)
TRANSFER_ENCODING: Final = Refusal(
    400, "bad_request", "Transfer-Encoding is not accepted: send the body with a Content-Length"
)
EXPECTATION_FAILED: Final = Refusal(
    417, "expectation_failed", "the only expectation understood is 100-continue"
)
TARGET_TOO_LONG: Final = Refusal(
    414, "uri_too_long", f"the request target is over {MAX_TARGET_BYTES} bytes"
)
HEADERS_TOO_LARGE: Final = Refusal(
    431,
    "header_fields_too_large",
    f"at most {MAX_HEADER_FIELDS} header fields of {MAX_HEADER_BYTES} bytes in all,"
    f" and a request target of at most {MAX_TARGET_READ_BYTES} bytes",
)
UNKNOWN_METHOD: Final = Refusal(501, "not_implemented", "unknown method")
VERSION_NOT_SUPPORTED: Final = Refusal(
    505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served"
)

# As Go's httpguts.ValidHostHeader: the bytes a Host header may hold.
_HOST = re.compile(r"[0-9A-Za-z!$%&'()*+,\-.:;=\[\]_~]*")


@functools.lru_cache(maxsize=256)  # clients send the same few hosts again and again
def _valid_host(host: str) -> bool:
    return _HOST.fullmatch(host) is not None


_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class _UnservedVersionRequest(web.BaseRequest):
    """A request in an HTTP version not served, made out as HTTP/1.1 so that its answer is."""


def refusal(request: web.BaseRequest) -> Refusal | None:
    """The answer owed to a request whose head breaks a limit or the HTTP rules; None if none.

    The parser has already refused what it can read no further (see ``parse_error_refusal``);
    the checks run in about the order Go's net/http and ``serve.Guard`` make them.
    """
    if type(request) is _UnservedVersionRequest:
        return VERSION_NOT_SUPPORTED
    headers = request.headers
    host = headers.get(hdrs.HOST)
    if host is not None and not _valid_host(host):
        return BAD_REQUEST
    expect = headers.get(hdrs.EXPECT)
    if expect and "100-continue" not in (t.strip().lower() for t in expect.split(",")):
        return EXPECTATION_FAILED
    method = request.method
    if method not in KNOWN_METHODS:
        return BAD_TARGET if method == hdrs.METH_CONNECT else UNKNOWN_METHOD
    raw_headers = request.raw_headers
    if len(raw_headers) > MAX_HEADER_FIELDS or (
        len(b"".join(itertools.chain.from_iterable(raw_headers))) > MAX_HEADER_BYTES
    ):
        return HEADERS_TOO_LARGE
    target = request.raw_path  # ASCII: the parser refuses any other byte in a target
    if len(target) > MAX_TARGET_BYTES:
        return HEADERS_TOO_LARGE if len(target) > MAX_TARGET_READ_BYTES else TARGET_TOO_LONG
    if not target.startswith("/") and _ABSOLUTE_FORM.match(target) is None:
        return BAD_TARGET
    if "%" in target and _BAD_ESCAPE.search(target.partition("?")[0]) is not None:
        return BAD_REQUEST
    if hdrs.TRANSFER_ENCODING in headers:
        return TRANSFER_ENCODING
    return None


# A request line Go would read (method token, target, HTTP/d.d), for a method llhttp refuses.
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ ]+) HTTP/(\d)\.(\d)")
_QUOTED_LINE = re.compile(r"\n\n  (b'[^\n]*'|b\"[^\n]*\")\n")


def parse_error_refusal(exc: BaseException) -> Refusal:
    """The answer to a request head aiohttp's C parser (llhttp) could not read.

    llhttp stops at the first fault, so the class of the fault says the answer: a line or field
    too long and too many fields are 431, an unknown HTTP version 505, a Transfer-Encoding it
    refuses 400 (as every Transfer-Encoding is here), the rest 400. A method it does not know
    in an otherwise readable request line is 501 (505 with an unknown version), as in Go, which
    reads any method token.
    """
    if isinstance(exc, http_exceptions.LineTooLong):
        return HEADERS_TOO_LARGE
    message = getattr(exc, "message", "")
    if not isinstance(message, str):
        return BAD_REQUEST
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return _unknown_method_refusal(message)
    if message == "Too many headers received":
        return HEADERS_TOO_LARGE
    if "Invalid HTTP version" in message or message.startswith("Pause on PRI/Upgrade"):
        return VERSION_NOT_SUPPORTED  # PRI * HTTP/2.0: HTTP/2 with prior knowledge
    if "Transfer-Encoding" in message:
        return TRANSFER_ENCODING
    return BAD_REQUEST


def _unknown_method_refusal(message: str) -> Refusal:
    """501 when the request line llhttp quotes in ``message`` is well formed, 505 with a version
    other than 1.0 or 1.1, 400 otherwise (garbage, TLS, a target Go would refuse)."""
    quoted = _QUOTED_LINE.search(message)
    if quoted is None or len(quoted.group(1)) > 65536:  # no line, or one not worth reading
        return BAD_REQUEST
    try:
        line = ast.literal_eval(quoted.group(1))
    except (ValueError, SyntaxError):
        return BAD_REQUEST
    m = _REQUEST_LINE.fullmatch(line) if isinstance(line, bytes) else None
    if m is None:
        return BAD_REQUEST
    target = m.group(2)
    if not (target.startswith((b"/", b"*")) or re.match(rb"[A-Za-z][A-Za-z0-9+.\-]*:", target)):
        return BAD_REQUEST
    if _BAD_ESCAPE.search(target.partition(b"?")[0].decode("latin-1")):
        return BAD_REQUEST
    if m.group(3) != b"1":
        return VERSION_NOT_SUPPORTED
    if m.group(4) not in (b"0", b"1"):
        return VERSION_NOT_SUPPORTED
    return UNKNOWN_METHOD


class SetupError(Exception):
    """A bad setting found when the service starts: ``run`` prints it as one line, exit 1."""


def timeout_from_env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise SetupError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


class _Protocol(web_protocol.RequestHandler):
    """aiohttp's connection handler with a header-read time-out and the envelope for errors.

    aiohttp has no public hook for either: the time-out watches the handler's waiter (set while
    it waits for the next request) and its request count (one more per head parsed or refused).
    """

    __slots__ = ("_head_timer", "_header_timeout")

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        idle_timeout: float,
    ) -> None:
        super().__init__(
            manager,
            loop=loop,
            keepalive_timeout=idle_timeout,
            access_log=None,  # type: ignore[arg-type]  # aiohttp accepts None: no access log
            max_line_size=MAX_TARGET_READ_BYTES,
            max_field_size=MAX_HEADER_BYTES,
            max_headers=MAX_HEADER_FIELDS,
            # A body is taken as sent: no contract has a Content-Encoding, and one that does not
            # decode would end in a traceback after the answer (Go's net/http does not decode).
            auto_decompress=False,
        )
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()  # Go: ReadHeaderTimeout runs from the accept

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        idle = self._head_timer is None and waiter is not None and not waiter.done()
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._cancel_head_timer()  # a whole head came (or the parser refused one)
        elif idle and data:
            self._arm_head_timer()  # the first bytes of the next request on a kept connection

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self._loop.call_later(self._header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self.force_close()  # unanswered, as Go closes it

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The envelope for a head the parser refused (one debug line, no traceback, no echo
        of the request) and for a handler that failed (500, logged with its traceback)."""
        if isinstance(exc, http_exceptions.HttpProcessingError):
            answer = parse_error_refusal(exc)
            server_logger.debug(
                "malformed request from %s: %d %s (%s)",
                request.remote,
                answer.status,
                answer.code,
                type(exc).__name__,
            )
        elif status == 504:
            answer = Refusal(504, "deadline_exceeded", "the handler timed out")
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            answer = Refusal(500, "internal", "internal error")
        if request.writer.output_size > 0:  # as aiohttp's: the answer has begun, cannot restart
            raise ConnectionError("the response was already being sent")
        return answer.response()


class Server(web.Server):
    """``web.Server`` whose connections are ``_Protocol``s, and whose requests in an HTTP
    version not served are marked (and answered as HTTP/1.1 by ``refusal``)."""

    def __init__(
        self,
        handler: Handler,
        *,
        header_timeout: float,
        idle_timeout: float,
        handler_cancellation: bool,
    ) -> None:
        super().__init__(
            handler, request_factory=self._request, handler_cancellation=handler_cancellation
        )
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout

    def _request(
        self,
        message: http_parser.RawRequestMessage,
        payload: streams.StreamReader,
        protocol: web_protocol.RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        version = message.version
        if version != HttpVersion11 and version != HttpVersion10:
            message = message._replace(version=HttpVersion11)
            return _UnservedVersionRequest(message, payload, protocol, writer, task, self._loop)
        if message is web_protocol.ERROR:  # a head the parser refused: answered as HTTP/1.1 too
            message = message._replace(version=HttpVersion11)
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop)

    def __call__(self) -> web_protocol.RequestHandler:
        return _Protocol(
            self,
            loop=self._loop,
            header_timeout=self.header_timeout,
            idle_timeout=self.idle_timeout,
        )
