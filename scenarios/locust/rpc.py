"""rpc load: `Recommend` (or `StreamRecommendations`) calls, over gRPC or over REST/JSON.

One locustfile for the four implementations of the rpc pattern (systems/rpc/README.md), one pair
of User classes per transport, the same requests over both:

- gRPC (python-grpc, go-grpc): `RecommendUser` closed-loop, `OpenLoopRecommend` open-loop; grpcio
  under gevent, one channel (and, through a local subchannel pool, one HTTP/2 connection) per
  user, no receive limit. Each call fires Locust's request event with request_type "grpc", the
  method's name, the time to the answer (a stream's: to its last message and status) and the
  answer's protobuf size; a non-OK status fails it with a `GrpcStatusError` (what the gRPC
  locustfiles share: scenarios/locust/grpc_calls.py).
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
from typing import Any

from locust import FastHttpUser, User, events, task

from bench.engines import recording
from scenarios.locust.grpc_calls import open_channel, timed_call
from scenarios.locust.pacing import add_user_rate, paced
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.gen import recommendations_pb2_grpc as pb_grpc

recording.install()

CALLS = ("unary", "stream")
REST_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


def _add_arguments(parser: Any, **_: Any) -> None:
    add_user_rate(parser, "calls")
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


# --- gRPC -----------------------------------------------------------------------------------------


class GrpcUser(User):
    """A User with one gRPC channel of its own, to `--host`, and the request it sends."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.request = Request(environment.parsed_options)
        self.channel = open_channel(self.host)
        self.stub = pb_grpc.RecommendationsStub(self.channel)

    def on_stop(self) -> None:
        self.channel.close()


def send_grpc(user: GrpcUser, context: dict[str, Any]) -> None:
    """One call; a stream is drained, and timed to its last message and status."""
    request = user.request
    message = request.message()
    name = "StreamRecommendations" if request.stream else "Recommend"
    with timed_call(user, name, request.timeout_s, context) as call:
        if request.stream:
            for page in user.stub.StreamRecommendations(message, timeout=request.timeout_s):
                call.length += page.ByteSize()
        else:
            call.length = user.stub.Recommend(message, timeout=request.timeout_s).ByteSize()


class RecommendUser(GrpcUser):
    """A gRPC client, closed-loop: its next call after the previous answer, at most
    `--user-rate` per second."""

    def wait_time(self) -> float:
        return paced(self)

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
        return paced(self)

    @task
    def recommend(self) -> None:
        send_rest(self, {})


OpenLoopRestRecommend = recording.open_loop_user(RestUser, send_rest, name="OpenLoopRestRecommend")
