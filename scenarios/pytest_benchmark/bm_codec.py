"""pytest-benchmark suite of the rpc pattern's encodings: protobuf against the REST service's JSON.

Run from the repository root with the project's venv::

    .venv/bin/python -m pytest scenarios/pytest_benchmark/bm_codec.py -p no:cacheprovider \\
        --codec-sizes 100,1024,65536,1048576 --benchmark-json /tmp/codec.json

For each size (``--codec-sizes``, bytes of protobuf) it builds the service's own answer
(``systems.rpc.recommender.Recommender``, user "codec", the default table) of a shape chosen by
one rule, the same as Go's (``go/internal/rpc/codec``), so both languages time the same message
byte for byte: ceil(size / 16 KiB) items, each with the most features (up to 4,096) that keep
the protobuf encoding at or under the size. It then times, one benchmark each:

- ``protobuf``: ``SerializeToString`` and ``RecommendResponse.FromString``;
- ``json``: the REST service's own mapping: ``rest_service.encode`` (json_format's dicts with
  unpopulated fields written, compact ``json.dumps``) and ``json_format.Parse`` of the bytes;
- ``json-dict``: a reference: ``json.dumps`` / ``json.loads`` of the same dict, without
  protobuf, so the JSON mapping's own share shows.

Both encodings are read back and compared with the message before anything is timed. Each
benchmark's ``extra_info`` holds its size, shape, codec, op and the bytes it writes or reads; the
output is plain pytest-benchmark JSON, so ``pytest-benchmark compare`` opens it.

Then ``test_handler`` times one call's application work, in process, as each Python server does
it on a request of ``--codec-handler`` (LIMIT,FEATURES; "" for none), a new user each call:
decode the request, check it, rank (``Recommender.rank``), build the items, and encode the
answer, with protobuf as python-grpc's handler and grpc's serializer do (``protobuf``) or with
python-rest's JSON mapping (``json``: ``json_format.Parse`` of the body, ``rest_service.encode``
of the answer). Its ``extra_info`` has ``op`` "handler", ``limit``, ``features`` and the answer's
``bytes``; both handlers are checked to give the same answer first. The suite is
skipped, with the reason, when protobuf's backend is not upb (the pure-Python one is not what
anyone deploys, and the services refuse it too).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest
from google.protobuf import __version__ as protobuf_version
from google.protobuf import json_format
from google.protobuf.internal import api_implementation
from pytest_benchmark.fixture import BenchmarkFixture

from systems.rpc import ranking
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.recommender import Recommender, protobuf_problem
from systems.rpc.rest_service import encode

USER_ID: Final = "codec"
#: The protobuf size an item of the most features comes near: items = ceil(size / ITEM_BYTES).
ITEM_BYTES: Final = 4 * ranking.MAX_FEATURES
MAX_SIZE: Final = ranking.MAX_LIMIT * ITEM_BYTES
_COMPACT: Final = (",", ":")
CODECS: Final = ("protobuf", "json", "json-dict")
OPS: Final = [(codec, op) for codec in CODECS for op in ("encode", "decode")]

PROBLEM = protobuf_problem()
#: Every test is skipped, with the reason, on another backend than upb (`pytest -rs` shows it).
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"bm_codec: {PROBLEM}")


@dataclass(frozen=True, slots=True)
class Shape:
    items: int
    features: int


@functools.cache
def recommender() -> Recommender:
    return Recommender(ranking.DEFAULT_ITEMS, ranking.DEFAULT_SEED)


def items(shape: Shape) -> list[pb.Item]:
    """The service's answer of that shape, as the items it encodes."""
    rec = recommender()
    return rec.items(rec.table.top(USER_ID, shape.items), shape.features) or []


def message(shape: Shape) -> pb.RecommendResponse:
    return pb.RecommendResponse(user_id=USER_ID, items=items(shape))


def shape_for(size: int) -> Shape:
    """ceil(size / 16 KiB) items with the most features that keep the protobuf at or under
    size (0 when none does): Go's codec.ShapeFor."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size {size} is not 1 to {MAX_SIZE} bytes")
    n = -(-size // ITEM_BYTES)
    low, high = 0, ranking.MAX_FEATURES
    while low < high:  # the largest feature count that fits: the size only grows with it
        mid = (low + high + 1) // 2
        if message(Shape(n, mid)).ByteSize() <= size:
            low = mid
        else:
            high = mid - 1
    return Shape(n, low)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One size's message and its encodings, checked to read back to it."""

    size: int
    shape: Shape
    items: list[pb.Item]
    wire: bytes
    text: bytes
    plain: dict[str, Any]
    """The JSON as a dict: what json-dict encodes."""


def _never() -> bool:
    return False


@functools.cache
def prepared(size: int) -> Prepared:
    shape = shape_for(size)
    found = items(shape)
    msg = pb.RecommendResponse(user_id=USER_ID, items=found)
    head = pb.RecommendResponse(user_id=USER_ID)
    text = encode(head, found, _never)
    assert text is not None
    wire = msg.SerializeToString()
    if pb.RecommendResponse.FromString(wire) != msg:
        raise AssertionError(f"size {size}: protobuf does not read back to the message")
    if json_format.Parse(text, pb.RecommendResponse()) != msg:
        raise AssertionError(f"size {size}: JSON does not read back to the message")
    return Prepared(size, shape, found, wire, text, json.loads(text))


def operation(p: Prepared, codec: str, op: str) -> tuple[Callable[[], object], int]:
    """The call to time and the bytes it writes (encode) or reads (decode)."""
    head = pb.RecommendResponse(user_id=USER_ID)
    msg = pb.RecommendResponse(user_id=USER_ID, items=p.items)
    plain_text = json.dumps(p.plain, separators=_COMPACT, ensure_ascii=False).encode()
    calls: dict[tuple[str, str], tuple[Callable[[], object], int]] = {
        ("protobuf", "encode"): (msg.SerializeToString, len(p.wire)),
        ("protobuf", "decode"): (lambda: pb.RecommendResponse.FromString(p.wire), len(p.wire)),
        ("json", "encode"): (lambda: encode(head, p.items, _never), len(p.text)),
        ("json", "decode"): (
            lambda: json_format.Parse(p.text, pb.RecommendResponse()),
            len(p.text),
        ),
        ("json-dict", "encode"): (
            lambda: json.dumps(p.plain, separators=_COMPACT, ensure_ascii=False).encode(),
            len(plain_text),
        ),
        ("json-dict", "decode"): (lambda: json.loads(plain_text), len(plain_text)),
    }
    return calls[codec, op]


def sizes(text: str) -> list[int]:
    try:
        found = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise pytest.UsageError(f"--codec-sizes: {text!r} is not sizes in bytes") from None
    if not found or any(not 1 <= s <= MAX_SIZE for s in found):
        raise pytest.UsageError(f"--codec-sizes: {text!r}: each size must be 1 to {MAX_SIZE}")
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", sizes(str(metafunc.config.getoption("--codec-sizes"))))


@pytest.mark.parametrize(("codec", "op"), OPS, ids=[f"{c}-{o}" for c, o in OPS])
def test_codec(benchmark: BenchmarkFixture, size: int, codec: str, op: str) -> None:
    p = prepared(size)
    call, nbytes = operation(p, codec, op)
    benchmark.group = f"{size} B"
    benchmark.extra_info.update(
        language="python",
        size=size,
        items=p.shape.items,
        features=p.shape.features,
        codec=codec,
        op=op,
        bytes=nbytes,
        proto_bytes=len(p.wire),
        json_bytes=len(p.text),
        protobuf=f"{protobuf_version} ({api_implementation.Type()})",
    )
    benchmark(call)


# ---- one call's application work ------------------------------------------------------------

#: The users the handler's requests go through, one a call, spread over the load's user-0 ..
#: user-99999 (Go's codec.UserIDs).
USERS: Final = [f"user-{k * 7919 % 100_000}" for k in range(1024)]


def handler_shape(text: str) -> tuple[int, int] | None:
    """--codec-handler's LIMIT,FEATURES; None for "" (no handler benchmark)."""
    if not text.strip():
        return None
    try:
        limit, features = (int(part) for part in text.split(","))
    except ValueError:
        raise pytest.UsageError(f"--codec-handler: {text!r} is not LIMIT,FEATURES") from None
    problem = ranking.validate(USERS[0], limit, (), features, 0)
    if problem is not None:
        raise pytest.UsageError(f"--codec-handler: {text!r}: {problem}")
    return limit, features


def _items(req: pb.RecommendRequest) -> list[pb.Item]:
    """A valid request's items, as both servers build them (ValueError for an invalid one)."""
    problem = Recommender.check(req)
    if problem is not None:
        raise ValueError(problem)
    rec = recommender()
    return rec.items(rec.rank(req), req.features, _never) or []


def handle_protobuf(data: bytes) -> bytes:
    """python-grpc's handler with grpc's serializers: the request from its bytes, the answer to
    its bytes."""
    req = pb.RecommendRequest.FromString(data)
    return pb.RecommendResponse(user_id=req.user_id, items=_items(req)).SerializeToString()


def handle_json(data: bytes) -> bytes:
    """python-rest's handler: the body read as protojson (an object only), the answer encoded."""
    text = data.decode()
    if not text.lstrip(" \t\r\n").startswith("{"):
        raise ValueError("want a JSON object")
    req = pb.RecommendRequest()
    json_format.Parse(text, req)
    body = encode(pb.RecommendResponse(user_id=req.user_id), _items(req), _never)
    assert body is not None
    return body


def request_bytes(codec: str, limit: int, features: int, user: str) -> bytes:
    req = pb.RecommendRequest(user_id=user, limit=limit, features=features)
    if codec == "protobuf":
        return req.SerializeToString()
    return json.dumps(json_format.MessageToDict(req), separators=_COMPACT).encode()


HANDLERS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "protobuf": handle_protobuf,
    "json": handle_json,
}


@functools.cache
def checked(limit: int, features: int) -> dict[str, int]:
    """Each handler's answer bytes to the first user, once both are checked to answer the
    service's message: ``limit`` items of ``features`` floats."""
    user = USERS[0]
    rec = recommender()
    want = pb.RecommendResponse(user_id=user, items=rec.items(rec.table.top(user, limit), features))
    if len(want.items) != limit:
        raise AssertionError(f"handler: {len(want.items)} items in the answer, want {limit}")
    out = {}
    for codec, handle in HANDLERS.items():
        answer = handle(request_bytes(codec, limit, features, user))
        back = (pb.RecommendResponse.FromString(answer) if codec == "protobuf"
                else json_format.Parse(answer, pb.RecommendResponse()))  # fmt: skip
        if back != want:
            raise AssertionError(f"handler {codec}: the answer is not the service's")
        out[codec] = len(answer)
    return out


@pytest.mark.parametrize("codec", list(HANDLERS))
def test_handler(benchmark: BenchmarkFixture, request: pytest.FixtureRequest, codec: str) -> None:
    shape = handler_shape(str(request.config.getoption("--codec-handler")))
    if shape is None:
        pytest.skip("bm_codec: --codec-handler is empty: no handler benchmark")
    limit, features = shape
    answer_bytes = checked(limit, features)[codec]
    handle = HANDLERS[codec]
    next_request = itertools.cycle([request_bytes(codec, limit, features, u) for u in USERS])
    benchmark.group = "handler"
    benchmark.extra_info.update(
        language="python",
        codec=codec,
        op="handler",
        limit=limit,
        features=features,
        bytes=answer_bytes,
        users=len(USERS),
        protobuf=f"{protobuf_version} ({api_implementation.Type()})",
    )
    benchmark(lambda: handle(next(next_request)))
