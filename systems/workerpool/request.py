"""The /work request: its fields from a query or a JSON body, validated, and the answer's body.

Validation is pure (no I/O) and checks the fields in the contract's order, kernel, seed, rounds,
size; every refusal is ``InvalidArgument`` whose message names the field and quotes the value
(``README.md``, "The service contract"). ``read_body`` reads a POST's body up to the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from systems.answers import json_kind
from systems.workerpool.kernels import KERNELS, MAX_SEED
from systems.workerpool.pools import Task

# The contract's limits on one request (tighter than kernels.check, which bounds the pools).
MAX_BODY: Final = 64 * 1024
MAX_ROUNDS: Final = 10_000_000
MIN_SIZE: Final = 8
MAX_SIZE: Final = 1024 * 1024
MAX_HASHED: Final = 1024 * 1024 * 1024  # rounds * size of one hash task
FIELDS: Final = ("kernel", "seed", "rounds", "size")
SHOWN: Final = 64  # characters of a client's value quoted in a message


def quote(text: str) -> str:
    """``text`` as a JSON string, for a message; cut after ``SHOWN`` characters."""
    return json.dumps(text)[:SHOWN]


class InvalidArgument(ValueError):
    """A request refused with ``400 invalid_argument``; the message names the field and value."""


class _LongInt(str):
    """A JSON integer literal too long to be any field's value, kept as its text."""


@dataclass(frozen=True, slots=True)
class _Given:
    """One field as the client wrote it: a query value (str) or a parsed JSON value."""

    value: object
    json: bool
    repeated: bool = False  # a query parameter given more than once


_DIGITS = re.compile(r"[0-9]+")


def _show(given: _Given) -> str:
    """The value for an error message: JSON as written, a query value quoted; cut if long."""
    value = given.value
    text = str(value) if isinstance(value, _LongInt) else json.dumps(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _parse_int(text: str) -> int | _LongInt:
    # int() refuses literals past 4300 digits; none that long is in range anyway.
    return int(text) if len(text) <= 32 else _LongInt(text)


def _refuse_unknown(names: Iterable[str], what: str) -> None:
    extra = sorted(name for name in names if name not in FIELDS)
    if extra:
        raise InvalidArgument(f"{quote(extra[0])}: unknown {what}")


def _integer(name: str, given: _Given, high: int) -> int:
    """``given`` as an integer in 0..high: in JSON a JSON integer, in a query digits only."""
    if given.repeated:
        raise InvalidArgument(f"{name}: given more than once")
    value = given.value
    if isinstance(value, _LongInt):
        number = high + 1
    elif given.json:
        if type(value) is not int:  # not bool, float or str
            raise InvalidArgument(f"{name}: {_show(given)} is not a JSON integer")
        number = value
    else:
        if not isinstance(value, str) or _DIGITS.fullmatch(value) is None:
            raise InvalidArgument(f"{name}: {_show(given)} is not a decimal integer")
        digits = value.lstrip("0")
        number = int(digits or "0") if len(digits) <= 32 else high + 1
    if not 0 <= number <= high:
        raise InvalidArgument(f"{name}: {_show(given)} is outside 0..{high}")
    return number


def _validate(fields: Mapping[str, _Given]) -> Task:
    """Check the fields in the contract's order, kernel, seed, rounds, size."""
    given = fields.get("kernel")
    if given is None:
        raise InvalidArgument("kernel: required (spin or hash)")
    if given.repeated:
        raise InvalidArgument("kernel: given more than once")
    kernel = given.value
    if type(kernel) is not str:
        raise InvalidArgument(f"kernel: {_show(given)} is not a string")
    if kernel not in KERNELS:
        raise InvalidArgument(f"kernel: {_show(given)} is neither spin nor hash")

    given = fields.get("seed")
    seed = 0 if given is None else _integer("seed", given, MAX_SEED)

    given = fields.get("rounds")
    if given is None:
        raise InvalidArgument("rounds: required")
    rounds = _integer("rounds", given, MAX_ROUNDS)

    given = fields.get("size")
    if kernel == "spin":  # ignored by spin, but it must still be an integer
        size = 0 if given is None else _integer("size", given, MAX_SEED)
        return Task(kernel, seed, rounds, size)
    if given is None:
        raise InvalidArgument("size: required for hash")
    size = _integer("size", given, MAX_SIZE)
    if size < MIN_SIZE or size % 8:
        raise InvalidArgument(
            f"size: {_show(given)} is not a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}"
        )
    if rounds * size > MAX_HASHED:
        raise InvalidArgument(
            f"size: {_show(given)} with {rounds} rounds hashes more than {MAX_HASHED} bytes"
        )
    return Task(kernel, seed, rounds, size)


def parse_query(pairs: Iterable[tuple[str, str]]) -> Task:
    """A GET's task from its decoded query parameters, or InvalidArgument naming the field.

    Unknown parameters are refused first (the first by name), then the fields are checked in
    the contract's order; numbers must be decimal digits only.
    """
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    _refuse_unknown(values, "query parameter")
    return _validate(
        {name: _Given(v[0], json=False, repeated=len(v) > 1) for name, v in values.items()}
    )


def parse_body(body: bytes) -> Task:
    """A POST's task from its body, a JSON object of at most 64 KiB, or InvalidArgument.

    Unknown fields are refused first (the first by name), then the fields are checked in the
    contract's order; numbers must be JSON integers (not strings, floats or booleans).
    """
    if len(body) > MAX_BODY:
        raise InvalidArgument(f"body: larger than {MAX_BODY} bytes")
    try:
        value = json.loads(body, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"body: not JSON: {str(exc)[:SHOWN]}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"body: not a JSON object but {json_kind(value)}")
    _refuse_unknown(value, "field")
    return _validate({name: _Given(v, json=True) for name, v in value.items()})


def answer_body(task: Task, output: str) -> bytes:
    """The echo of the task's fields, defaults filled in, with the kernel's output."""
    kernel, seed, rounds, size = task
    fields = {"kernel": kernel, "seed": seed, "rounds": rounds, "size": size, "output": output}
    return json.dumps(fields, separators=(",", ":")).encode()


async def read_body(request: web.BaseRequest) -> bytes:
    """The request's body, or InvalidArgument as soon as it passes ``MAX_BODY`` bytes."""
    too_large = InvalidArgument(f"body: larger than {MAX_BODY} bytes")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise too_large
    if request.headers.get("Expect", "").lower() == "100-continue":  # the client waits for it
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started
    body = bytearray()
    try:
        while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
            body += chunk
            if len(body) > MAX_BODY:
                raise too_large
    except HttpProcessingError as exc:  # e.g. broken chunked encoding
        raise InvalidArgument(f"body: {exc.message}"[:SHOWN]) from None
    return bytes(body)
