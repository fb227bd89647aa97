"""The db service's request validation (``systems/db/request.py``): item ids, the query of
``GET /items`` and the body of ``POST /orders``.

Every refusal is InvalidArgument whose message starts with the field or parameter it names
(``id: ...``, ``count: ...``, ``lines[1].quantity: ...``) and quotes at most a bounded part of
the client's text.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from systems.db.request import (
    MAX_BODY,
    MAX_ID,
    MAX_IDS,
    SHOWN,
    InvalidArgument,
    ItemsQuery,
    Line,
    Order,
    parse_id,
    parse_items_query,
    parse_order,
    quote,
)


def query(text: str) -> ItemsQuery:
    pairs = [item.split("=", 1) for item in text.split("&") if item]
    return parse_items_query([(p[0], p[1] if len(p) > 1 else "") for p in pairs])


def order(value: Any) -> Order:
    return parse_order(json.dumps(value).encode())


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidArgument) as exc:
        call(*args)
    return str(exc.value)


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"customer_id": "c-17", "lines": [{"item_id": 7, "quantity": 2}]}
    return {**base, **fields}


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("7", 7), ("007", 7), (str(MAX_ID), MAX_ID), ("0" * 18 + "1", 1)],
)
def test_id_accepts(text: str, value: int) -> None:
    assert parse_id(text) == value


BAD_IDS = ["", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "abc", "0x10", "\u0661"]


@pytest.mark.parametrize("text", [*BAD_IDS, str(MAX_ID + 1), "1" * 20, "0" * 20, "9" * 5000])
def test_id_refuses(text: str) -> None:
    message = refusal(parse_id, text)
    assert message.startswith("id: ")
    assert len(message) < 200


def test_id_names_its_parameter() -> None:
    assert refusal(parse_id, "x", "ids").startswith("ids: ")


# --- GET /items ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ids=1,2,3", ItemsQuery((1, 2, 3), None, "any")),
        ("ids=3,1,3&mode=each", ItemsQuery((3, 1, 3), None, "each")),
        ("mode=any&ids=42", ItemsQuery((42,), None, "any")),
        ("count=1", ItemsQuery(None, 1, "any")),
        (f"count={MAX_IDS}&mode=each", ItemsQuery(None, MAX_IDS, "each")),
        ("count=020", ItemsQuery(None, 20, "any")),
        ("ids=" + ",".join(["5"] * MAX_IDS), ItemsQuery((5,) * MAX_IDS, None, "any")),
    ],
)
def test_items_query_accepts(text: str, expected: ItemsQuery) -> None:
    assert query(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "ids"),
        ("mode=any", "ids"),
        ("ids=1&count=2", "ids"),
        ("ids=", "ids"),
        ("ids=1,,2", "ids"),
        ("ids=1,", "ids"),
        ("ids=1,x", "ids"),
        ("ids=0", "ids"),
        ("ids= 1", "ids"),
        (f"ids={MAX_ID + 1}", "ids"),
        ("ids=" + ",".join(["5"] * (MAX_IDS + 1)), "ids"),
        ("ids=1&ids=2", "ids"),
        ("count=0", "count"),
        (f"count={MAX_IDS + 1}", "count"),
        ("count=-1", "count"),
        ("count=", "count"),
        ("count=1.5", "count"),
        ("count=" + "9" * 5000, "count"),
        ("ids=1&mode=all", "mode"),
        ("ids=1&mode=", "mode"),
        ("ids=1&mode=ANY", "mode"),
        ("ids=1&mode=any&mode=each", "mode"),
        ("ids=1&limit=2", '"limit"'),
        ("limit=2", '"limit"'),  # an unknown parameter is refused before a missing one
    ],
)
def test_items_query_refuses(text: str, named: str) -> None:
    message = refusal(query, text)
    assert message.startswith(named + ":"), message
    assert len(message) < 200


def test_count_draws_ids_in_range() -> None:
    drawn = ItemsQuery(None, 500, "any").resolve(10, random.Random(1))
    assert len(drawn) == 500
    assert set(drawn) == set(range(1, 11))  # 500 draws of 10 ids: every one, surely


def test_ids_resolve_as_asked() -> None:
    assert ItemsQuery((3, 1, 3), None, "each").resolve(100) == [3, 1, 3]


# --- POST /orders -------------------------------------------------------------------------------


def test_order_accepts_and_sorts_lines() -> None:
    lines = [{"item_id": 9, "quantity": 1}, {"quantity": 1000, "item_id": 2}]
    assert order(body(lines=lines)) == Order("c-17", (Line(2, 1000), Line(9, 1)))


def test_order_accepts_the_limits() -> None:
    lines = [{"item_id": MAX_ID - i, "quantity": 1} for i in range(50)]
    parsed = order(body(customer_id="é" * 64, lines=lines))
    assert parsed.customer_id == "é" * 64
    assert [line.item_id for line in parsed.lines] == sorted(MAX_ID - i for i in range(50))


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (body(extra=1), "body"),
        ({"customer_id": "c", "lines": [], "note": ""}, "body"),  # unknown fields first
        ({"lines": [{"item_id": 1, "quantity": 1}]}, "customer_id"),
        (body(customer_id=""), "customer_id"),
        (body(customer_id="x" * 65), "customer_id"),
        (body(customer_id=17), "customer_id"),
        (body(customer_id=None), "customer_id"),
        (body(customer_id="a\u0000b"), "customer_id"),
        (body(customer_id="\ud800"), "customer_id"),
        ({"customer_id": "c"}, "lines"),
        (body(lines=[]), "lines"),
        (body(lines={"item_id": 1, "quantity": 1}), "lines"),
        (body(lines=[{"item_id": i, "quantity": 1} for i in range(1, 52)]), "lines"),
        (body(lines=[7]), "lines[0]"),
        (body(lines=[{"item_id": 7, "quantity": 1, "price_cents": 5}]), "lines[0]"),
        (body(lines=[{"quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": 7}]), "lines[0].quantity"),
        (body(lines=[{"item_id": 0, "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": -3, "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": MAX_ID + 1, "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": "7", "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": 7.0, "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": True, "quantity": 1}]), "lines[0].item_id"),
        (body(lines=[{"item_id": 7, "quantity": 0}]), "lines[0].quantity"),
        (body(lines=[{"item_id": 7, "quantity": 1001}]), "lines[0].quantity"),
        (body(lines=[{"item_id": 7, "quantity": None}]), "lines[0].quantity"),
        (
            body(lines=[{"item_id": 1, "quantity": 1}, {"item_id": 2, "quantity": 0}]),
            "lines[1].quantity",
        ),
        (
            body(lines=[{"item_id": 7, "quantity": 1}, {"item_id": 7, "quantity": 2}]),
            "lines[1].item_id",
        ),
        ([], "body"),
        ("order", "body"),
        (None, "body"),
    ],
)
def test_order_refuses(value: Any, named: str) -> None:
    message = refusal(order, value)
    assert message.startswith(named + ":"), message


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe", b'{"customer_id": "c", "lines": [}', b"[" * 100_000],
)
def test_order_refuses_what_is_not_json(raw: bytes) -> None:
    assert refusal(parse_order, raw).startswith("body: ")


def test_order_refuses_a_body_over_the_limit() -> None:
    raw = json.dumps(body(customer_id="c" + " " * MAX_BODY)).encode()
    assert refusal(parse_order, raw).startswith("body: larger than")


def test_messages_quote_little_of_the_request() -> None:
    long_name = "n" * 10_000
    for message in (
        refusal(order, {long_name: 1}),
        refusal(order, body(lines=[{"item_id": "x" * 10_000, "quantity": 1}])),
        refusal(query, f"{long_name}=1"),
        refusal(query, "ids=" + "y" * 10_000),
        refusal(query, "ids=1&mode=" + "z" * 10_000),
    ):
        assert len(message) <= 200, message


def test_quote_cuts_long_values() -> None:
    assert quote("abc") == '"abc"'
    cut = quote("x" * 1000)
    assert cut.startswith('"xxx')
    assert len(cut) == SHOWN + 1
