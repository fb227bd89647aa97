"""The rpc pattern's REST/JSON server in Python, on the aiohttp scaffold (``systems/serving.py``).

    python -m systems.rpc.rest_service --listen 127.0.0.1:8080 --items 1000 --seed 1 \\
        --max-in-flight 128 --max-lag-ms 10

``POST /v1/recommend`` (one JSON answer) and ``POST /v1/recommend:stream`` (NDJSON, one
RecommendPage a line, written a line at a time), in protobuf's JSON mapping of
proto/recommendations/v1 (``google.protobuf.json_format``), with ``GET /healthz`` and
``GET /metrics``. See ``README.md`` for the contract.

A call of either RPC path is admitted or refused (503 overloaded: as many in progress as the
limit allows, ``--max-in-flight`` lowered while the event loop runs ``--max-lag-ms`` late,
``systems.overload.AdaptiveLimit``) before anything is read; then its ``Request-Timeout-Ms``
header is read (400 when malformed), its Content-Length checked (413 over 1 MiB, before the
body is read), its body read and parsed (400 when not a RecommendRequest in JSON, unknown fields
included) and validated (400 with ``ranking.validate``'s message). The deadline bounds every
wait (``asyncio.timeout_at``) and is checked after each piece of work: before ranking, before
answering and before each line of a stream (504; once a stream's 200 is out, a last line with
the error envelope ends it). Every answer of the two RPC paths is counted in the metrics under
its RPC's name and the gRPC code its status maps to; 404s and 405s are no call of an RPC.

SIGTERM or SIGINT: the scaffold's drain (no new connections, calls in flight get 5 s), exit 0.
It refuses to start (exit 1, one line) when protobuf's backend is not upb or aiohttp's C HTTP
parser is missing.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import json_format
from google.protobuf.message import Message

from systems import serving
from systems.answers import Failure
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.metrics import Metrics, code_for_status, ops_response
from systems.rpc.recommender import (
    OVERLOADED,
    Admission,
    Config,
    Recommender,
    pages,
    parse_args,
    protobuf_problem,
)
from systems.serving import error_body, json_response

PROG: Final = "rpc-rest"
RECOMMEND: Final = "/v1/recommend"
STREAM: Final = "/v1/recommend:stream"
#: The largest request body accepted: 1 MiB, as over gRPC.
MAX_BODY: Final = 1 << 20
#: A call's deadline in ms from its arrival: the REST twin of grpc-timeout (8 digits at most).
TIMEOUT_HEADER: Final = "Request-Timeout-Ms"
MAX_TIMEOUT_MS: Final = 99_999_999
NDJSON: Final = "application/x-ndjson"
#: How long a stream's last line, the envelope of a deadline passed, may take to write.
WRITE_SLACK_S: Final = 1.0
#: How long a message quoting the body may be, in characters.
MAX_MESSAGE: Final = 200
#: An answer's JSON: protojson's mapping (lowerCamelCase names, enums by name), compact, UTF-8,
#: with fields at their default value written out ("page": 0, "features": []), as go-rest does
#: (protojson's EmitUnpopulated), so both languages send the same payload.
EMIT_UNPOPULATED: Final = True
_COMPACT: Final = (",", ":")

_DIGITS = re.compile(r"[0-9]{1,8}")
_BAD_TIMEOUT: Final = error_body(
    "invalid_argument", f"{TIMEOUT_HEADER}: must be an integer from 1 to {MAX_TIMEOUT_MS}"
)
_TOO_LARGE: Final = error_body("resource_exhausted", f"body: larger than {MAX_BODY} bytes")
_DEADLINE: Final = error_body("deadline_exceeded", f"the call's deadline ({TIMEOUT_HEADER}) passed")
_OVERLOADED: Final = error_body("overloaded", OVERLOADED)
_POST_ONLY: Final = error_body("method_not_allowed", "only POST is allowed here")
_RETRY: Final = {"Retry-After": "1"}
_INTERNAL: Final = error_body("internal", "internal error")
_UNREADABLE: Final = error_body("invalid_argument", "body: cannot be read")
#: Counted (CANCELLED) for a call whose client went away; nobody reads the answer.
CLIENT_GONE: Final = 499
_GONE: Final = error_body("cancelled", "the client went away")


def invalid(message: str) -> Failure:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return Failure(400, error_body("invalid_argument", message))


def deadline_passed() -> Failure:
    """A fresh 504 each time: a shared exception instance would keep the last raiser's frames."""
    return Failure(504, _DEADLINE)


def encode(head: Message, items: Sequence[pb.Item], past: Callable[[], bool]) -> bytes | None:
    """``head`` with ``items`` (its field 2) in protojson's mapping, compact: the JSON of the
    whole message, with ``past()`` checked before each item (one of 4,096 features takes
    json_format about 14 ms); None as soon as it holds."""
    answer = json_format.MessageToDict(head, always_print_fields_with_no_presence=EMIT_UNPOPULATED)
    if items:  # else left out (or written [] by the head's mapping), as in the whole message's
        out = []
        for item in items:
            if past():
                return None
            out.append(
                json_format.MessageToDict(
                    item, always_print_fields_with_no_presence=EMIT_UNPOPULATED
                )
            )
        answer["items"] = out
    return json.dumps(answer, separators=_COMPACT, ensure_ascii=False).encode()


def deadline_of(request: web.BaseRequest, start: float) -> float | None:
    """The call's deadline on the loop's clock, from ``Request-Timeout-Ms``; None without it."""
    values = request.headers.getall(TIMEOUT_HEADER, ())
    if not values:
        return None
    text = values[0].strip(" \t")
    if len(values) > 1 or _DIGITS.fullmatch(text) is None or int(text) < 1:
        raise Failure(400, _BAD_TIMEOUT)
    return start + int(text) / 1000


async def read_request(request: web.BaseRequest) -> pb.RecommendRequest:
    """The body as a RecommendRequest: 413 over 1 MiB (by Content-Length, before reading), 400
    when it is not one in protojson's mapping (unknown fields and enum names included)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise Failure(413, _TOO_LARGE, close=True)
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:  # a Content-Encoding that inflates past the limit
        raise Failure(413, _TOO_LARGE, close=True) from None
    except (ConnectionError, http_exceptions.ContentLengthError):  # the client went away
        raise Failure(CLIENT_GONE, _GONE, close=True) from None
    except (http_exceptions.HttpProcessingError, RequestPayloadError):  # bad Content-Encoding
        raise Failure(400, _UNREADABLE, close=True) from None
    req = pb.RecommendRequest()
    try:
        text = body.decode()
        # json_format reads any JSON array as an empty message: only an object is one.
        if not text.lstrip(" \t\r\n").startswith("{"):
            raise json_format.ParseError("want a JSON object")
        json_format.Parse(text, req)
    # json_format raises ParseError for most bodies, but a few (not UTF-8, nested too deep, a
    # JSON array) end with the error of the step that failed: every one is the client's.
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise invalid(f"body: not a RecommendRequest in JSON: {e}") from None
    return req


class Handler:
    """Routes every request; counts the answers of the two RPC paths and their durations."""

    def __init__(self, recommender: Recommender, admission: Admission, metrics: Metrics) -> None:
        self._rec = recommender
        self._admission = admission
        self._metrics = metrics

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path in (RECOMMEND, STREAM):
            if request.method != "POST":
                return json_response(405, _POST_ONLY, {"Allow": "POST"})
            start = time.perf_counter()
            method = "Recommend" if path == RECOMMEND else "StreamRecommendations"
            response, code = await self._call(request, path == STREAM)
            self._metrics.observe(method, code, time.perf_counter() - start)
            return response
        return ops_response(request.method, path, self._metrics.registry)

    async def _call(self, request: web.BaseRequest, stream: bool) -> tuple[web.StreamResponse, str]:
        """Serve one call; its answer and the gRPC code it counts as."""
        admission = self._admission
        # Admission comes before anything is read or allocated for the call.
        if not admission.enter():
            return json_response(503, _OVERLOADED, _RETRY), code_for_status(503)
        loop = asyncio.get_running_loop()
        try:
            deadline = deadline_of(request, loop.time())
            try:
                async with asyncio.timeout_at(deadline):
                    req = await read_request(request)
            except TimeoutError:  # the body did not arrive in time: the rest is not read
                raise Failure(504, _DEADLINE, close=True) from None
            message = Recommender.check(req)
            if message is not None:
                raise invalid(message)
            if _past(loop, deadline):
                raise deadline_passed()
            if stream:
                return await self._stream(request, req, deadline)
            rec = self._rec

            def past() -> bool:
                return _past(loop, deadline)

            items = rec.items(rec.rank(req), req.features, past)
            head = pb.RecommendResponse(user_id=req.user_id)
            body = None if items is None else encode(head, items, past)
            if body is None or past():
                raise deadline_passed()
            return json_response(200, body), "OK"
        except Failure as f:
            return f.response(), code_for_status(f.status)
        except Exception:  # a bug: still the envelope, never a traceback to the client
            return json_response(500, _INTERNAL), code_for_status(500)
        finally:
            admission.leave()

    async def _stream(
        self, request: web.BaseRequest, req: pb.RecommendRequest, deadline: float | None
    ) -> tuple[web.StreamResponse, str]:
        """NDJSON, a RecommendPage a line, each written (and awaited) before the next is made;
        200 with an empty body when nothing matches. The deadline is checked before each line
        and bounds every write: past it before the 200, a 504; after, a last line with the
        envelope ends the stream (a client that does not read it in WRITE_SLACK_S is cut off).
        """
        loop = asyncio.get_running_loop()
        rec = self._rec
        response = web.StreamResponse(headers={"Content-Type": NDJSON})

        def past() -> bool:
            return _past(loop, deadline)

        try:
            async with asyncio.timeout_at(deadline):
                for n, chunk in enumerate(pages(rec.rank(req), req.page_size)):
                    if past():
                        break
                    items = rec.items(chunk, req.features, past)
                    line = None if items is None else encode(pb.RecommendPage(page=n), items, past)
                    if line is None or past():
                        break
                    if not response.prepared:
                        await response.prepare(request)
                    await response.write(line + b"\n")
                    # A write returns without yielding while the socket takes the bytes: let
                    # the loop read (and admit or refuse) other requests between lines.
                    await asyncio.sleep(0)
                else:
                    if not response.prepared:
                        return web.Response(headers={"Content-Type": NDJSON}), "OK"
                    await response.write_eof()
                    return response, "OK"
            if not response.prepared:
                raise deadline_passed()
            async with asyncio.timeout(WRITE_SLACK_S):
                await response.write(_DEADLINE + b"\n")
                await response.write_eof()
            return response, code_for_status(504)
        except TimeoutError:  # a write blocked past the deadline (or its slack)
            code = 504
        except ConnectionError:  # the client went away
            code = CLIENT_GONE
        if not response.prepared:
            return Failure(code, _DEADLINE, close=True).response(), code_for_status(code)
        response.force_close()
        return response, code_for_status(code)


def _past(loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
    return deadline is not None and loop.time() >= deadline


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain calls in flight (at most 5 s) and return."""
    serving.raise_fd_limit(4096 + 256)
    admission = Admission(config.max_in_flight, config.max_lag_ms)
    metrics = Metrics(lambda: admission.in_flight)
    handler = Handler(Recommender(config.items, config.seed), admission, metrics)
    admission.start()
    try:
        await serving.serve(handler, config.host, config.port)
    finally:
        admission.stop()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(PROG, __doc__, argv, default_port=8080, metrics=False)
    problem = protobuf_problem()
    if problem is not None:
        print(f"{PROG}: refusing to start: {problem}", file=sys.stderr)
        return 1
    return serving.run(PROG, lambda: run(config))


if __name__ == "__main__":
    sys.exit(main())
