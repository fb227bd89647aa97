"""The worker-pool service's request validation (``request.py``): query and JSON forms, limits,
field order.

Every refusal is InvalidArgument whose message starts with the field it names (``rounds: ...``,
``"priority": unknown ...``, ``body: ...``) and quotes the offending value.
"""

from __future__ import annotations

import json

import pytest

from systems.workerpool.pools import Task
from systems.workerpool.request import (
    MAX_BODY,
    InvalidArgument,
    answer_body,
    parse_body,
    parse_query,
)

MAX_SEED = 2**64 - 1


def query(text: str) -> Task:
    pairs = [tuple(item.split("=", 1)) for item in text.split("&") if item]
    return parse_query([(name, value) for name, value in pairs])


def named(exc: pytest.ExceptionInfo[InvalidArgument]) -> str:
    """The field a refusal names: the message up to its first colon, unquoted."""
    return str(exc.value).split(":", 1)[0].strip('"')


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("kernel=spin&rounds=1000&seed=42", Task("spin", 42, 1000, 0)),
        ("kernel=spin&rounds=0", Task("spin", 0, 0, 0)),
        (f"kernel=spin&seed={MAX_SEED}&rounds=10000000", Task("spin", MAX_SEED, 10_000_000, 0)),
        ("kernel=spin&rounds=007&size=12", Task("spin", 0, 7, 12)),  # size ignored by spin
        ("size=4096&rounds=4&seed=3&kernel=hash", Task("hash", 3, 4, 4096)),
        ("kernel=hash&rounds=1024&size=1048576", Task("hash", 0, 1024, 1048576)),
        ("kernel=hash&rounds=0&size=8", Task("hash", 0, 0, 8)),
    ],
)
def test_query_accepts(text: str, task: Task) -> None:
    assert query(text) == task


@pytest.mark.parametrize(
    ("text", "field", "shown"),
    [
        ("", "kernel", ""),
        ("rounds=10", "kernel", ""),
        ("kernel=sleep&rounds=10", "kernel", '"sleep"'),
        ("kernel=SPIN&rounds=10", "kernel", '"SPIN"'),
        ("kernel=spin", "rounds", ""),
        ("kernel=spin&rounds=-1", "rounds", '"-1"'),
        ("kernel=spin&rounds=+1", "rounds", '"+1"'),
        ("kernel=spin&rounds=1.0", "rounds", '"1.0"'),
        ("kernel=spin&rounds=", "rounds", '""'),
        ("kernel=spin&rounds=abc", "rounds", '"abc"'),
        ("kernel=spin&rounds=\u0661", "rounds", ""),  # a digit, but not an ASCII one
        ("kernel=spin&rounds=10000001", "rounds", '"10000001"'),
        ("kernel=spin&rounds=1&seed=18446744073709551616", "seed", '"18446744073709551616"'),
        ("kernel=spin&rounds=1&seed=" + "9" * 5000, "seed", '"999'),
        ("kernel=spin&rounds=1&size=x", "size", '"x"'),
        ("kernel=hash&rounds=1", "size", ""),
        ("kernel=hash&rounds=1&size=12", "size", '"12"'),
        ("kernel=hash&rounds=1&size=0", "size", '"0"'),
        ("kernel=hash&rounds=1&size=1048584", "size", '"1048584"'),
        ("kernel=hash&rounds=1025&size=1048576", "size", '"1048576"'),
        ("kernel=spin&rounds=1&priority=high", "priority", ""),
        ("kernel=spin&rounds=1&rounds=2", "rounds", ""),
        ("kernel=spin&kernel=spin&rounds=1", "kernel", ""),
        # The first invalid field in the order kernel, seed, rounds, size; unknown ones first.
        ("rounds=abc&kernel=sleep", "kernel", '"sleep"'),
        ("rounds=abc&seed=x&kernel=spin", "seed", '"x"'),
        ("kernel=hash&size=abc&rounds=abc", "rounds", '"abc"'),
        ("kernel=sleep&zzz=1&aaa=2", "aaa", ""),
    ],
)
def test_query_refusals_name_the_field(text: str, field: str, shown: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        query(text)
    assert named(exc) == field
    assert shown in str(exc.value)


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("raw", "task"),
    [
        (body({"kernel": "spin", "seed": 42, "rounds": 1000}), Task("spin", 42, 1000, 0)),
        (body({"rounds": 5, "kernel": "spin", "size": 0}), Task("spin", 0, 5, 0)),
        (
            body({"kernel": "hash", "seed": 99, "rounds": 100, "size": 64}),
            Task("hash", 99, 100, 64),
        ),
        (body({"kernel": "spin", "seed": MAX_SEED, "rounds": 1}), Task("spin", MAX_SEED, 1, 0)),
        (b'  {"kernel":"spin","rounds":3,"seed":-0}\n', Task("spin", 0, 3, 0)),
    ],
)
def test_json_accepts(raw: bytes, task: Task) -> None:
    assert parse_body(raw) == task


@pytest.mark.parametrize(
    ("raw", "field", "shown"),
    [
        (b"", "body", ""),
        (b"nope", "body", ""),
        (b'{"kernel": "spin",', "body", ""),
        (b"\xff\xfe\xfa", "body", ""),
        (body(["spin", 1]), "body", "array"),
        (body("spin"), "body", "string"),
        (b"null", "body", "null"),
        (b"[" * 60_000, "body", "recursion"),  # nested deeper than the parser goes
        (body({"rounds": 1}), "kernel", ""),
        (body({"kernel": 5, "rounds": 1}), "kernel", "5"),
        (body({"kernel": None, "rounds": 1}), "kernel", "null"),
        (body({"kernel": "sleep", "rounds": 1}), "kernel", '"sleep"'),
        (body({"kernel": "spin"}), "rounds", ""),
        (body({"kernel": "spin", "rounds": "5"}), "rounds", '"5"'),
        (body({"kernel": "spin", "rounds": 1.5}), "rounds", "1.5"),
        (body({"kernel": "spin", "rounds": 1.0}), "rounds", "1.0"),
        (b'{"kernel": "spin", "rounds": 1e3}', "rounds", "1000.0"),
        (body({"kernel": "spin", "rounds": True}), "rounds", "true"),
        (body({"kernel": "spin", "rounds": None}), "rounds", "null"),
        (body({"kernel": "spin", "rounds": [1]}), "rounds", "[1]"),
        (body({"kernel": "spin", "rounds": 10_000_001}), "rounds", "10000001"),
        (body({"kernel": "spin", "rounds": 1, "seed": -3}), "seed", "-3"),
        (body({"kernel": "spin", "rounds": 1, "seed": MAX_SEED + 1}), "seed", str(MAX_SEED + 1)),
        (b'{"kernel": "spin", "rounds": 1, "seed": ' + b"9" * 5000 + b"}", "seed", "999"),
        (body({"kernel": "spin", "rounds": 1, "size": "0"}), "size", '"0"'),
        (body({"kernel": "hash", "rounds": 1}), "size", ""),
        (body({"kernel": "hash", "rounds": 1, "size": 12}), "size", "12"),
        (body({"kernel": "hash", "rounds": 1, "size": 2**20 + 8}), "size", "1048584"),
        (body({"kernel": "hash", "rounds": 1025, "size": 2**20}), "size", "1048576"),
        (body({"kernel": "spin", "rounds": 1, "cost": 9}), "cost", ""),
        # The first invalid field in the order kernel, seed, rounds, size; unknown ones first.
        (body({"size": "x", "rounds": "x", "seed": "x", "kernel": "x"}), "kernel", '"x"'),
        (body({"size": "x", "rounds": "x", "seed": "x", "kernel": "hash"}), "seed", '"x"'),
        (body({"size": "x", "rounds": "x", "kernel": "hash"}), "rounds", '"x"'),
        (body({"kernel": 1, "b": 1, "a": 2}), "a", ""),
    ],
)
def test_json_refusals_name_the_field(raw: bytes, field: str, shown: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_body(raw)
    assert named(exc) == field
    assert shown in str(exc.value)


def test_body_of_exactly_64_kib_is_read_and_one_byte_more_refused() -> None:
    task = b'{"kernel": "spin", "rounds": 1}'
    at_limit = task[:-1] + b" " * (MAX_BODY - len(task)) + b"}"
    assert len(at_limit) == 64 * 1024
    assert parse_body(at_limit) == Task("spin", 0, 1, 0)
    with pytest.raises(InvalidArgument, match=r"^body: larger than 65536 bytes$"):
        parse_body(at_limit + b" ")


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(InvalidArgument) as exc:
        query("kernel=" + "x" * 10_000 + "&rounds=1")
    assert named(exc) == "kernel"
    assert len(str(exc.value)) < 200


def test_answer_echoes_the_fields_in_contract_order() -> None:
    answer = answer_body(Task("spin", 42, 1000, 0), "49e9dfcd6219dc1c")
    assert answer == (
        b'{"kernel":"spin","seed":42,"rounds":1000,"size":0,"output":"49e9dfcd6219dc1c"}'
    )
