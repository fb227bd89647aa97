"""The rpc ranking reference against ranking_vectors.json (which Go's tests read too)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from systems.rpc import ranking
from systems.rpc.ranking import (
    DIM,
    MAX_FEATURES,
    MAX_LIMIT,
    MAX_PAGE_SIZE,
    MAX_USER_ID_BYTES,
    Table,
    fnv1a64,
    splitmix64,
    unit_floats,
    user_embedding,
    validate,
)

VECTORS: dict[str, Any] = json.loads(ranking.VECTORS.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = VECTORS["cases"]
# The contract: scores agree within 1e-6 across implementations.
SCORE_TOLERANCE = 1e-6


def test_vectors_file_is_what_the_reference_writes() -> None:
    assert ranking.VECTORS.read_text(encoding="utf-8") == ranking.vectors_text(), (
        "ranking_vectors.json is stale: python -m systems.rpc.ranking --vectors"
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    q = case["request"]
    error = validate(q["user_id"], q["limit"], q["categories"], q["features"], q["page_size"])
    assert error == case.get("error")
    if error is not None:
        return
    table = Table(case["items"], case["seed"])
    answer = table.top(q["user_id"], q["limit"], q["categories"])
    assert [r.item_id for r in answer] == case["item_ids"]
    assert [r.category for r in answer] == case["categories"]
    assert [r.rank for r in answer] == list(range(1, len(answer) + 1))
    assert [r.score for r in answer] == pytest.approx(case["scores"], abs=SCORE_TOLERANCE)
    if not q["features"]:
        assert "features" not in case
        return
    for r, features in zip(answer, case["features"], strict=True):
        got = table.features(r.index, q["features"])
        assert got.dtype == np.float32
        assert got.tolist() == features


def test_vectors_cover_the_shapes() -> None:
    names = {c["name"] for c in CASES}
    assert {"limit-1", "limit-1000", "music", "tools-all", "utf8-features"} <= names
    errors = [c["error"] for c in CASES if "error" in c]
    for field in ("user_id", "limit", "filters.categories", "features", "page_size"):
        assert any(e.startswith(f"{field}: ") for e in errors), field
    limit_1000 = next(c for c in CASES if c["name"] == "limit-1000")
    assert len(limit_1000["item_ids"]) == 1000
    tools = next(c for c in CASES if c["name"] == "tools-all")
    assert len(tools["item_ids"]) == 250
    assert set(tools["categories"]) == {4}


def test_splitmix64_known_values() -> None:
    # The first five outputs for seed 1234567, as published with the algorithm (Rosetta Code,
    # "Pseudo-random numbers/Splitmix64").
    assert splitmix64(1234567, 5).tolist() == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]


def test_splitmix64_wraps_seeds_near_two_to_the_64() -> None:
    # The state wraps modulo 2^64: seeding with -gamma makes the first state 0, whose mix is 0.
    assert splitmix64(2**64 - ranking.GOLDEN_GAMMA, 1).tolist() == [0]
    assert splitmix64(2**64 - 1, 3).tolist() == splitmix64(-1, 3).tolist()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0xCBF29CE484222325),
        (b"a", 0xAF63DC4C8601EC8C),
        (b"ab", 0x089C4407B545986A),
        (b"abc", 0xE71FA2190541574B),
        (b"foobar", 0x85944171F73967E8),
    ],
)
def test_fnv1a64_known_values(data: bytes, expected: int) -> None:
    # The FNV reference test vectors (also Go's hash/fnv golden values).
    assert fnv1a64(data) == expected


def test_unit_floats_range_is_exact() -> None:
    draws = np.array([0, 2**63, 2**64 - 1], dtype=np.uint64)
    assert unit_floats(draws).tolist() == [-1.0, 0.0, 1.0 - 2.0**-52]


def test_table_layout() -> None:
    table = Table(9, 5)
    assert table.embeddings.shape == (9, DIM)
    assert table.embeddings[2].tolist() == unit_floats(splitmix64(5, 48))[32:48].tolist()
    assert table.categories.tolist() == [1, 2, 3, 4, 1, 2, 3, 4, 1]
    assert ranking.item_id(7) == "item-00007"
    assert ranking.item_id(123456) == "item-123456"
    assert VECTORS["item_0_embedding"] == Table().embeddings[0].tolist()


def test_scores_match_blas_matmul() -> None:
    table = Table()
    user = user_embedding("alice")
    np.testing.assert_allclose(table.scores(user), table.embeddings @ user, rtol=0, atol=1e-12)


def test_user_embedding_hashes_utf8() -> None:
    assert (
        user_embedding("zoë").tolist()
        == unit_floats(splitmix64(fnv1a64("zoë".encode()), 16)).tolist()
    )
    assert VECTORS["fnv1a64"]["zoë-🙂"] == f"{fnv1a64('zoë-🙂'.encode()):016x}"


def test_top_matches_a_full_sort() -> None:
    table = Table(257, 99)
    for user in ("u1", "u2"):
        scores = table.scores(user_embedding(user))
        for categories in ((), (2,), (1, 4)):
            indices = [i for i in range(257) if not categories or table.categories[i] in categories]
            full = sorted(indices, key=lambda i: (-scores[i], i))
            for limit in (1, 2, 64, 256, 1000):
                got = [r.index for r in table.top(user, limit, categories)]
                assert got == full[:limit], (user, categories, limit)


@pytest.mark.parametrize("limit", [1, 3, 7, 10])
def test_ties_go_by_index(limit: int) -> None:
    table = Table(40, 3)
    table.columns[:] = table.columns[:, :1]  # every item gets item 0's embedding: all tie
    answer = table.top("tied", limit, [3])
    assert [r.index for r in answer] == [2 + 4 * k for k in range(limit)]
    assert len({r.score for r in answer}) == 1


def test_features_repeat_every_16() -> None:
    table = Table(5, 1)
    f = table.features(3, 33)
    assert f.tolist() == [float(np.float32(table.embeddings[3][j % 16])) for j in range(33)]
    assert table.features(3, 0).tolist() == []
    assert table.top("a", 0) == []
    assert Table(3, 1).top("a", 5, [4]) == []  # items 0..2 are BOOKS, MUSIC, GAMES


def test_validate_accepts_the_limits() -> None:
    assert validate("a", 1, [], 0, 0) is None
    assert validate("é" * 32, MAX_LIMIT, [1, 2, 3, 4], MAX_FEATURES, MAX_PAGE_SIZE) is None
    assert validate("u" * MAX_USER_ID_BYTES, 5, [4, 4], 1, 1) is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", 1, [], 0, 0), "user_id"),
        (("é" * 33, 1, [], 0, 0), "user_id"),
        (("a", 0, [], 0, 0), "limit"),
        (("a", -5, [], 0, 0), "limit"),
        (("a", 1, [0], 0, 0), "filters.categories"),
        (("a", 1, [2, 9], 0, 0), "filters.categories"),
        (("a", 1, [], MAX_FEATURES + 1, 0), "features"),
        (("a", 1, [], 0, MAX_PAGE_SIZE + 1), "page_size"),
        (("", 0, [0], -1, -1), "user_id"),
    ],
)
def test_validate_names_the_first_bad_field(
    args: tuple[str, int, list[int], int, int], field: str
) -> None:
    message = validate(*args)
    assert message is not None
    assert message.startswith(f"{field}: ")


def test_main_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert ranking.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
