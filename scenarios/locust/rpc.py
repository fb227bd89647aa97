"""rpc load: `Recommend` (or `StreamRecommendations`) calls, over gRPC or over REST/JSON.

One locustfile for the four implementations of the rpc pattern (systems/rpc/README.md), one pair
of User classes per transport, the same requests over both:

- gRPC (python-grpc, go-grpc): `RecommendUser` closed-loop, `OpenLoopRecommend` open-loop; grpcio
  under gevent, one channel (and, through a local subchannel pool, one HTTP/2 connection) per
  user, no receive limit. Each call fires Locust's request event with request_type "grpc", the
  method's name, the time to the answer (a stream's: to its last message and status) and the
  answer's protobuf size; a non-OK status fails it with a `GrpcStatusError`.
- REST (python-rest, go-rest): `RestRecommendUser` closed-loop, `OpenLoopRestRecommend` open-loop;
  `POST /v1/recommend` (or `/v1/recommend:stream`, its NDJSON body read to the end) with the
  request in protobuf's JSON mapping, HTTP/1.1 keep-alive, no compression; any status other than
  200 is a failure.

Runs on its own with Locust's web UI, or headless naming the class (each transport's classes
only talk to their own servers):

    locust -f scenarios/locust/rpc.py --host http://127.0.0.1:50051 --limit 10 RecommendUser
    locust -f scenarios/locust/rpc.py --host http://127.0.0.1:8080 RestRecommendUser

and under the harness (`patternbench run rpc --engine locust`), which records every call's latency
into HDR histograms through `bench.engines.recording`. A gRPC `--host` may be written
`http://host:port` (as the harness gives it), `grpc://host:port` or `host:port`.

Every call asks for the same thing but the user: `user-<n>`, n drawn uniformly from
`[0, --users-space)` per call. The options are sent as given, invalid ones included (`--limit -1`
measures the cost of refusals: INVALID_ARGUMENT / 400).

Error kinds, as the harness's report reads them (`bench.stats.headroom`): a gRPC status is
`grpc <Code>` as loadgen writes it (`grpc InvalidArgument`, `grpc Unavailable`), a call that ran
past `--timeout-s` is `timeout`; REST statuses are `HTTP <status>`.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import FastHttpUser, User, events, task
from locust.exception import LocustError
from locust.user.wait_time import constant_pacing

from bench.engines import recording
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.gen import recommendations_pb2_grpc as pb_grpc

# grpcio's own threads would block gevent's loop: make it wait cooperatively, before any channel.
grpc_gevent.init_gevent()
recording.install()

CALLS = ("unary", "stream")
#: Each user's own connection (grpcio otherwise shares one among channels of the same target, so
#: that N closed-loop users would be N streams on one connection while REST users have N), and no
#: receive limit (1,000 items of 4,096 features are 16 MB).
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", -1),
]
REST_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


def _add_arguments(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--user-rate",
        type=float,
        default=10.0,
        help="closed-loop: calls per second per user; 0 sends as fast as answers come",
    )
    parser.add_argument("--call", default="unary", choices=CALLS, help="unary | stream")
    parser.add_argument("--limit", type=int, default=10, help="items wanted (1..1000)")
    parser.add_argument(
        "--features", type=int, default=0, help="floats per item (0..4096): the payload knob"
    )
    parser.add_argument(
        "--page-size", type=int, default=0, help="stream: items per message (0: one)"
    )
    parser.add_argument(
        "--categories",
        default="",
        help="comma-separated filter: BOOKS, MUSIC, GAMES, TOOLS (or CATEGORY_…, or numbers); "
        "empty: every category",
    )
    parser.add_argument(
        "--users-space", type=int, default=1000, help="user ids user-0 … user-(N-1), one per call"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="gRPC: the call's deadline, in seconds"
    )


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


def categories(text: str) -> list[pb.Category.ValueType]:
    """`--categories` as enum numbers: names with or without `CATEGORY_`, or numbers as they are
    (so that an unknown one, such as 9, can be sent)."""
    found: list[pb.Category.ValueType] = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        if word.lstrip("-").isdigit():
            found.append(pb.Category.ValueType(int(word)))
            continue
        name = word.upper()
        name = name if name.startswith("CATEGORY_") else f"CATEGORY_{name}"
        try:
            found.append(pb.Category.Value(name))
        except ValueError:
            known = ", ".join(pb.Category.keys())
            raise ValueError(f"--categories: unknown category {word!r} (known: {known})") from None
    return found


class Request:
    """What every call sends, from the command line; only the user id changes from call to call."""

    def __init__(self, options: Any) -> None:
        self.stream = options.call == "stream"
        self.limit = int(options.limit)
        self.features = int(options.features)
        self.page_size = int(options.page_size)
        self.categories = categories(str(options.categories))
        self.users_space = int(options.users_space)
        if self.users_space < 1:
            raise ValueError(f"--users-space must be at least 1, got {self.users_space}")
        self.timeout_s = float(options.timeout_s)

    def user_id(self) -> str:
        return f"user-{random.randrange(self.users_space)}"

    def message(self) -> pb.RecommendRequest:
        return pb.RecommendRequest(
            user_id=self.user_id(),
            limit=self.limit,
            filters=pb.Filters(categories=self.categories) if self.categories else None,
            features=self.features,
            page_size=self.page_size,
        )

    def json(self) -> str:
        """The same request in protobuf's JSON mapping (enums by name when they have one)."""
        body: dict[str, Any] = {"userId": self.user_id(), "limit": self.limit}
        if self.categories:
            names: dict[int, str] = {number: name for name, number in pb.Category.items()}
            body["filters"] = {"categories": [names.get(c, c) for c in self.categories]}
        body |= {"features": self.features, "pageSize": self.page_size}
        return json.dumps(body, separators=(",", ":"))


def _paced(user: User) -> float:
    rate = float(user.environment.parsed_options.user_rate)
    return constant_pacing(1.0 / rate)(user) if rate > 0 else 0.0


# --- gRPC -----------------------------------------------------------------------------------------


class GrpcStatusError(Exception):
    """A call that ended with a non-OK status, or with no answer by the client's deadline.

    `error_kind` is what the harness's recorder counts it as, named as loadgen names it
    (`grpc InvalidArgument`, or `timeout` when `--timeout-s` passed); `repr()`, which Locust's
    failure table shows, adds the details.
    """

    def __init__(self, code: grpc.StatusCode, details: str, error_kind: str) -> None:
        super().__init__(code.name, details)
        self.code = code
        self.details = details
        self.error_kind = error_kind

    def __str__(self) -> str:
        return str(self.code.name)

    def __repr__(self) -> str:
        return f"{self.code.name}: {self.details}"


def _go_name(code: grpc.StatusCode) -> str:
    """The code as grpc-go's `codes.Code.String()` writes it (loadgen's error kinds)."""
    special = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}
    return special.get(code) or "".join(w.capitalize() for w in code.name.split("_"))


def status_error(error: grpc.RpcError, elapsed_s: float, timeout_s: float) -> GrpcStatusError:
    code, details = error.code(), str(error.details() or "")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and elapsed_s >= timeout_s:
        return GrpcStatusError(code, details, "timeout")
    return GrpcStatusError(code, details, f"grpc {_go_name(code)}")


def grpc_target(host: str | None) -> str:
    """`host:port` from the user's host: `http://host:port`, `grpc://host:port` or `host:port`."""
    if not host:
        raise LocustError("no host: give --host host:port (or http://host:port)")
    return urlsplit(host).netloc if "://" in host else host


class GrpcUser(User):
    """A User with one gRPC channel of its own, to `--host`, and the request it sends."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.request = Request(environment.parsed_options)
        self.channel = grpc.insecure_channel(grpc_target(self.host), options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.RecommendationsStub(self.channel)

    def on_stop(self) -> None:
        self.channel.close()


def send_grpc(user: GrpcUser, context: dict[str, Any]) -> None:
    """One call; a stream is drained, and timed to its last message and status."""
    request = user.request
    message = request.message()
    name = "StreamRecommendations" if request.stream else "Recommend"
    length = 0
    exception: Exception | None = None
    start = time.perf_counter()
    try:
        if request.stream:
            for page in user.stub.StreamRecommendations(message, timeout=request.timeout_s):
                length += page.ByteSize()
        else:
            length = user.stub.Recommend(message, timeout=request.timeout_s).ByteSize()
    except grpc.RpcError as e:
        exception = status_error(e, time.perf_counter() - start, request.timeout_s)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    user.environment.events.request.fire(
        request_type="grpc",
        name=name,
        response_time=elapsed_ms,
        response_length=length,
        response=None,
        context={**user.context(), **context},
        exception=exception,
    )


class RecommendUser(GrpcUser):
    """A gRPC client, closed-loop: its next call after the previous answer, at most
    `--user-rate` per second."""

    def wait_time(self) -> float:
        return _paced(self)

    @task
    def recommend(self) -> None:
        send_grpc(self, {})


OpenLoopRecommend = recording.open_loop_user(GrpcUser, send_grpc, name="OpenLoopRecommend")


# --- REST/JSON ------------------------------------------------------------------------------------


class RestUser(FastHttpUser):
    """A FastHttpUser (its own keep-alive connection) and the request it sends."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.request = Request(environment.parsed_options)


def send_rest(user: RestUser, context: dict[str, Any]) -> None:
    """One call; a stream's NDJSON body is read to its end before the call is timed."""
    path = "/v1/recommend:stream" if user.request.stream else "/v1/recommend"
    with user.client.post(
        path,
        data=user.request.json(),
        headers=REST_HEADERS,
        name=path,
        catch_response=True,
        context=context,
    ) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


class RestRecommendUser(RestUser):
    """A REST client, closed-loop: its next call after the previous answer, at most
    `--user-rate` per second."""

    def wait_time(self) -> float:
        return _paced(self)

    @task
    def recommend(self) -> None:
        send_rest(self, {})


OpenLoopRestRecommend = recording.open_loop_user(RestUser, send_rest, name="OpenLoopRestRecommend")
