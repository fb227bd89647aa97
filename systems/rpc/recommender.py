"""What the rpc pattern's two Python servers share (as ``go/internal/rpc/recsvc`` is for Go): the
command line, the refusal of protobuf's pure-Python backend, admission, and the answers built
from the ranking reference (``systems/rpc/ranking.py``). Nothing here knows either wire format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, cast

from google.protobuf.internal import api_implementation

from systems import serving
from systems.overload import AdaptiveLimit
from systems.rpc import ranking
from systems.rpc.gen import recommendations_pb2 as pb

SERVICE_NAME: Final = "recommendations.v1.Recommendations"
#: Full method names (gRPC's paths) → the metrics' method label.
METHODS: Final = {
    f"/{SERVICE_NAME}/Recommend": "Recommend",
    f"/{SERVICE_NAME}/StreamRecommendations": "StreamRecommendations",
}
#: --items at most: the table holds 128 bytes of embedding per item (Go's bound too).
MAX_ITEMS: Final = 1_000_000
#: The message of a refusal, over both transports (Go's ``recsvc.Overloaded``).
OVERLOADED: Final = "too many calls in flight, retry later"


def protobuf_problem() -> str | None:
    """Why protobuf's Python backend is not the one to measure (upb, in C), if so."""
    backend = api_implementation.Type()
    if backend == "upb":
        return None
    return (
        f"protobuf's {backend!r} backend is in use, not 'upb'"
        " (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION set?): the pure-Python one is not measured"
    )


@dataclass(frozen=True, slots=True)
class Config:
    """A server's validated command line; ``metrics_*`` only for the gRPC server."""

    host: str
    port: int
    metrics_host: str
    metrics_port: int
    items: int
    seed: int
    max_in_flight: int
    max_lag_ms: int


def parse_args(
    prog: str,
    description: str | None,
    argv: Sequence[str] | None,
    *,
    default_port: int,
    metrics: bool,
) -> Config:
    """The validated configuration, or exit 2 with one line naming the bad flag."""
    p = serving.argument_parser(prog, description)
    p.add_argument("--listen", type=serving.parse_listen, default=("127.0.0.1", default_port))
    if metrics:
        p.add_argument("--metrics-listen", type=serving.parse_listen, default=("127.0.0.1", 9464))
    p.add_argument("--items", type=serving.int_in(1, MAX_ITEMS), default=ranking.DEFAULT_ITEMS)
    p.add_argument("--seed", type=serving.int_in(0, 2**64 - 1), default=ranking.DEFAULT_SEED)
    p.add_argument("--max-in-flight", type=serving.int_in(1), default=128)
    p.add_argument("--max-lag-ms", type=serving.int_in(0), default=10)
    a = p.parse_args(argv)
    metrics_listen: tuple[str, int] = a.metrics_listen if metrics else ("", 0)
    return Config(
        host=a.listen[0],
        port=a.listen[1],
        metrics_host=metrics_listen[0],
        metrics_port=metrics_listen[1],
        items=a.items,
        seed=a.seed,
        max_in_flight=a.max_in_flight,
        max_lag_ms=a.max_lag_ms,
    )


class Admission:
    """At most ``limit.value`` calls in progress: ``--max-in-flight``, lowered while the event
    loop runs ``--max-lag-ms`` late or more (``systems.overload.AdaptiveLimit``; 0 keeps it
    fixed, as Go's). One event loop, so a plain count. ``start()`` on the loop, ``stop()``.
    """

    def __init__(self, maximum: int, max_lag_ms: int) -> None:
        self.limit = AdaptiveLimit(maximum, max_lag_ms / 1000)
        self.in_flight = 0

    def enter(self) -> bool:
        """Take a slot if one is free; ``leave()`` gives it back."""
        if self.in_flight >= self.limit.value:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    def start(self) -> None:
        self.limit.start()

    def stop(self) -> None:
        self.limit.stop()


def _never() -> bool:
    return False


class Recommender:
    """The item table and the answers built from it, as protobuf messages."""

    def __init__(self, items: int, seed: int) -> None:
        self.table = ranking.Table(items, seed)

    @staticmethod
    def check(req: pb.RecommendRequest) -> str | None:
        """The INVALID_ARGUMENT (400) message of a request, None when valid."""
        return ranking.validate(
            req.user_id, req.limit, req.filters.categories, req.features, req.page_size
        )

    def rank(self, req: pb.RecommendRequest) -> list[ranking.Ranked]:
        """The ``limit`` best items of a valid request, best first."""
        return self.table.top(req.user_id, req.limit, req.filters.categories)

    def item(self, r: ranking.Ranked, features: int) -> pb.Item:
        """One item of an answer, with ``features`` floats."""
        item = pb.Item(item_id=r.item_id, category=_category(r), score=r.score, rank=r.rank)
        if features:
            item.features.extend(self.table.features(r.index, features).tolist())
        return item

    def items(
        self, ranked: Sequence[ranking.Ranked], features: int, past: Callable[[], bool] = _never
    ) -> list[pb.Item] | None:
        """The answer's items; None as soon as ``past()`` holds, checked before each (an item
        of 4,096 features takes about 0.2 ms)."""
        out = []
        for r in ranked:
            if past():
                return None
            out.append(self.item(r, features))
        return out


def _category(r: ranking.Ranked) -> pb.Category.ValueType:
    # ValueType is int at run time: a cast for the type checker, no call per item.
    return cast(pb.Category.ValueType, r.category)


def pages(ranked: Sequence[ranking.Ranked], page_size: int) -> Iterator[Sequence[ranking.Ranked]]:
    """A stream's items, ``page_size`` at a time (1 when 0); nothing when ``ranked`` is empty."""
    size = max(1, page_size)
    for start in range(0, len(ranked), size):
        yield ranked[start : start + size]
