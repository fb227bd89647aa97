"""The rpc pattern's ranking and request checks: the reference of proto/recommendations/v1.

Every implementation (Python and Go, ``go/internal/rpc``) answers the same: the item table and a
user's embedding come from SplitMix64, a score is the dot product summed in index order 0..15,
and the answer is the ``limit`` best items of the wanted categories, ties by item index. The
cases of ``ranking_vectors.json`` (written by ``python -m systems.rpc.ranking --vectors``) are
checked by the Python and the Go tests alike.

Scores are summed column by column (``s += column_j * user_j``, j = 0..15): numpy's element-wise
multiply and add round each step, as Go's loop does, so both give the same bits; ``matrix @
user`` would leave the order (and fused multiply-adds) to BLAS, within 1e-15 of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

DIM: Final = 16
DEFAULT_ITEMS: Final = 1000
DEFAULT_SEED: Final = 1
MAX_USER_ID_BYTES: Final = 64
MAX_LIMIT: Final = 1000
MAX_FEATURES: Final = 4096
MAX_PAGE_SIZE: Final = 1000
# The Category enum's values that an item can have: CATEGORY_BOOKS .. CATEGORY_TOOLS.
CATEGORIES: Final = (1, 2, 3, 4)

GOLDEN_GAMMA: Final = 0x9E3779B97F4A7C15
FNV64_OFFSET: Final = 0xCBF29CE484222325
FNV64_PRIME: Final = 0x100000001B3
_M64: Final = 2**64 - 1

VECTORS: Final = Path(__file__).with_name("ranking_vectors.json")

Floats = npt.NDArray[np.float64]


def splitmix64(seed: int, n: int) -> npt.NDArray[np.uint64]:
    """The first ``n`` outputs of SplitMix64 seeded with ``seed`` (the state is bumped first)."""
    # uint64 arrays wrap modulo 2^64 without a warning, as the C and Go code does.
    state = np.uint64(seed & _M64) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN_GAMMA)
    z = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_floats(draws: npt.NDArray[np.uint64]) -> Floats:
    """Draws mapped to [-1, 1): (x >> 11) * 2^-53 * 2 - 1, every step exact in float64."""
    return (draws >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2.0 - 1.0


def fnv1a64(data: bytes) -> int:
    """The FNV-1a 64-bit hash of ``data``."""
    h = FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV64_PRIME) & _M64
    return h


def user_embedding(user_id: str) -> Floats:
    """16 draws of SplitMix64 seeded with the FNV-1a 64 hash of the user id's UTF-8 bytes."""
    return unit_floats(splitmix64(fnv1a64(user_id.encode()), DIM))


def item_id(index: int) -> str:
    return f"item-{index:05d}"


@dataclass(frozen=True, slots=True)
class Ranked:
    """One item of an answer; ``rank`` is 1 for the first."""

    index: int
    item_id: str
    category: int
    score: float
    rank: int


class Table:
    """The item table: ``items`` embeddings of 16 float64 from SplitMix64 seeded with ``seed``."""

    def __init__(self, items: int = DEFAULT_ITEMS, seed: int = DEFAULT_SEED) -> None:
        if items < 1:
            raise ValueError(f"items must be at least 1, not {items}")
        self.items = items
        self.seed = seed
        # Row i is item i's embedding: draws 16i .. 16i+15.
        self.embeddings: Floats = unit_floats(splitmix64(seed, items * DIM)).reshape(items, DIM)
        self.columns: Floats = np.ascontiguousarray(self.embeddings.T)
        self.features32: npt.NDArray[np.float32] = self.embeddings.astype(np.float32)
        self.categories: npt.NDArray[np.int64] = CATEGORIES[0] + np.arange(items) % len(CATEGORIES)

    def scores(self, user: Floats) -> Floats:
        """Every item's score for a user's embedding, summed in index order 0..15."""
        s: Floats = self.columns[0] * user[0]
        for j in range(1, DIM):
            s += self.columns[j] * user[j]
        return s

    def top(self, user_id: str, limit: int, categories: Iterable[int] = ()) -> list[Ranked]:
        """The ``limit`` best items of ``categories`` (all when empty): score desc, index asc."""
        if limit < 1:
            return []
        scores = self.scores(user_embedding(user_id))
        wanted = sorted(set(categories))
        if wanted:
            candidates = np.flatnonzero(np.isin(self.categories, wanted))
            scores = scores[candidates]
        else:
            candidates = np.arange(self.items)
        if limit < len(candidates):
            # Any `limit` of the best, then every candidate that ties with the worst of them,
            # so that ties at the boundary are settled by index below.
            threshold = scores[np.argpartition(-scores, limit - 1)[:limit]].min()
            keep = np.flatnonzero(scores >= threshold)
            candidates, scores = candidates[keep], scores[keep]
        order = np.lexsort((candidates, -scores))[:limit]
        return [
            Ranked(
                index=int(candidates[k]),
                item_id=item_id(int(candidates[k])),
                category=int(self.categories[candidates[k]]),
                score=float(scores[k]),
                rank=rank,
            )
            for rank, k in enumerate(order, start=1)
        ]

    def features(self, index: int, n: int) -> npt.NDArray[np.float32]:
        """Item ``index``'s ``n`` features: feature j = float32(embedding[j % 16])."""
        return np.resize(self.features32[index], n)


def validate(
    user_id: str, limit: int, categories: Iterable[int], features: int, page_size: int
) -> str | None:
    """The error message naming the first invalid field, in field-number order; None if valid.

    The same text as Go's ``rpc.Validate``: INVALID_ARGUMENT over gRPC, 400 over REST.
    """
    n = len(user_id.encode())
    if not 1 <= n <= MAX_USER_ID_BYTES:
        return f"user_id: must be 1 to {MAX_USER_ID_BYTES} bytes of UTF-8, got {n}"
    if not 1 <= limit <= MAX_LIMIT:
        return f"limit: must be 1 to {MAX_LIMIT}, got {limit}"
    for category in categories:
        if category not in CATEGORIES:
            return (
                f"filters.categories: must be {CATEGORIES[0]} to {CATEGORIES[-1]} "
                f"(CATEGORY_BOOKS to CATEGORY_TOOLS), got {category}"
            )
    if not 0 <= features <= MAX_FEATURES:
        return f"features: must be 0 to {MAX_FEATURES}, got {features}"
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        return f"page_size: must be 0 to {MAX_PAGE_SIZE}, got {page_size}"
    return None


# The cases of ranking_vectors.json: (name, table items, table seed, request fields).
_CASES: Final[list[tuple[str, int, int, dict[str, object]]]] = [
    ("top-10", 1000, 1, {"user_id": "alice", "limit": 10}),
    ("limit-1", 1000, 1, {"user_id": "bob", "limit": 1}),
    ("limit-1000", 1000, 1, {"user_id": "carol", "limit": 1000}),
    ("music", 1000, 1, {"user_id": "dave", "limit": 5, "categories": [2]}),
    ("games-books-repeated", 1000, 1, {"user_id": "erin", "limit": 20, "categories": [3, 1, 3]}),
    ("every-category", 1000, 1, {"user_id": "alice", "limit": 10, "categories": [4, 3, 2, 1]}),
    ("tools-all", 1000, 1, {"user_id": "frank", "limit": 1000, "categories": [4]}),
    ("utf8-features", 1000, 1, {"user_id": "zoë-🙂", "limit": 3, "features": 20}),
    ("user-id-64-bytes", 1000, 1, {"user_id": "u" * 64, "limit": 2, "page_size": 1000}),
    ("small-table", 10, 7, {"user_id": "grace", "limit": 1000, "features": 1}),
    ("small-table-filtered", 10, 7, {"user_id": "grace", "limit": 2, "categories": [2]}),
    ("user-id-empty", 1000, 1, {"user_id": "", "limit": 1}),
    ("user-id-65-bytes", 1000, 1, {"user_id": "é" * 32 + "u", "limit": 1}),
    ("limit-0", 1000, 1, {"user_id": "a", "limit": 0}),
    ("limit-1001", 1000, 1, {"user_id": "a", "limit": 1001}),
    ("category-unspecified", 1000, 1, {"user_id": "a", "limit": 1, "categories": [1, 0]}),
    ("category-unknown", 1000, 1, {"user_id": "a", "limit": 1, "categories": [5]}),
    ("features-negative", 1000, 1, {"user_id": "a", "limit": 1, "features": -1}),
    ("features-4097", 1000, 1, {"user_id": "a", "limit": 1, "features": 4097}),
    ("page-size-negative", 1000, 1, {"user_id": "a", "limit": 1, "page_size": -1}),
    ("page-size-1001", 1000, 1, {"user_id": "a", "limit": 1, "page_size": 1001}),
    ("first-field-named", 1000, 1, {"user_id": "a", "limit": 0, "features": -1}),
]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def vector_cases() -> list[dict[str, object]]:
    """Every case of ranking_vectors.json, computed by this reference."""
    cases: list[dict[str, object]] = []
    tables: dict[tuple[int, int], Table] = {}
    for name, items, seed, fields in _CASES:
        request = {"categories": [], "features": 0, "page_size": 0} | fields
        request = {
            k: request[k] for k in ("user_id", "limit", "categories", "features", "page_size")
        }
        listed = request["categories"]
        assert isinstance(listed, list)
        categories = [_int(c) for c in listed]
        user_id = str(request["user_id"])
        limit, features = _int(request["limit"]), _int(request["features"])
        case: dict[str, object] = {"name": name, "items": items, "seed": seed, "request": request}
        error = validate(user_id, limit, categories, features, _int(request["page_size"]))
        if error is not None:
            case["error"] = error
        else:
            table = tables.setdefault((items, seed), Table(items, seed))
            ranked = table.top(user_id, limit, categories)
            case["item_ids"] = [r.item_id for r in ranked]
            case["categories"] = [r.category for r in ranked]
            case["scores"] = [r.score for r in ranked]
            if features:
                case["features"] = [table.features(r.index, features).tolist() for r in ranked]
        cases.append(case)
    return cases


def vectors_text() -> str:
    """ranking_vectors.json's text: one case a line, floats as repr (they read back exactly)."""
    table = Table()
    head = {
        "comment": "python -m systems.rpc.ranking --vectors writes this file; do not edit",
        "fnv1a64": {u: f"{fnv1a64(u.encode()):016x}" for u in ("", "a", "alice", "zoë-🙂")},
        "item_0_embedding": table.embeddings[0].tolist(),
        "item_999_embedding": table.embeddings[999].tolist(),
    }
    lines = [
        f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)},"
        for k, v in head.items()
    ]
    cases = ",\n".join(f"    {json.dumps(c, ensure_ascii=False)}" for c in vector_cases())
    return "{\n" + "\n".join(lines) + '\n  "cases": [\n' + cases + "\n  ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m systems.rpc.ranking", description=__doc__)
    parser.add_argument("--vectors", action="store_true", help=f"write {VECTORS.name}")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {VECTORS.name} differs")
    args = parser.parse_args(argv)
    text = vectors_text()
    if args.check:
        same = VECTORS.exists() and VECTORS.read_text(encoding="utf-8") == text
        print(f"{VECTORS.name}: {'up to date' if same else 'differs from the reference'}")
        return 0 if same else 1
    if args.vectors:
        VECTORS.write_text(text, encoding="utf-8")
        print(f"wrote {VECTORS}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
