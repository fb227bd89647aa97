"""The db service's requests, parsed and validated (pure: no I/O), per ``README.md``, "The
contract": an item id in a path, the query of ``GET /items``, the body of ``POST /orders``.

Every refusal is ``InvalidArgument`` (400 ``invalid_argument``) whose message starts with the
field or parameter at fault (``id: ...``, ``ids: ...``, ``lines[2].quantity: ...``) and quotes
at most ``SHOWN`` characters of the client's text, so a message never echoes more than 200
characters of the request.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from systems.answers import json_kind

#: An id: a decimal integer from 1 to 2^63 - 1 (PostgreSQL's bigint), at most 19 digits.
MAX_ID: Final = 2**63 - 1
#: At most this many ids a ``GET /items`` (by ``ids`` or ``count``).
MAX_IDS: Final = 500
#: A POST /orders body over this is refused (413) before it is read whole.
MAX_BODY: Final = 64 * 1024
MAX_CUSTOMER_ID: Final = 64
MAX_LINES: Final = 50
MAX_QUANTITY: Final = 1000
#: Characters of a client's value quoted in a message.
SHOWN: Final = 64

Mode = Literal["any", "each"]
_MODES: Final[dict[str, Mode]] = {"any": "any", "each": "each"}
ITEMS_PARAMETERS: Final = ("ids", "count", "mode")
ORDER_FIELDS: Final = ("customer_id", "lines")
LINE_FIELDS: Final = ("item_id", "quantity")

_ID = re.compile(r"[0-9]{1,19}")
_ID_RANGE: Final = f"an integer from 1 to {MAX_ID}"


class InvalidArgument(ValueError):
    """A request refused with ``400 invalid_argument``; the message names the field."""


def quote(value: object) -> str:
    """``value`` as JSON for a message (a string quoted), cut after ``SHOWN`` characters."""
    text = json.dumps(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


# --- ids ----------------------------------------------------------------------------------------


def parse_id(text: str, name: str = "id") -> int:
    """A decimal id from 1 to 2^63 - 1 (digits only: no sign, no spaces), or InvalidArgument."""
    if _ID.fullmatch(text) is None:
        raise InvalidArgument(f"{name}: {quote(text)} is not {_ID_RANGE}")
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise InvalidArgument(f"{name}: {quote(text)} is not {_ID_RANGE}")
    return value


# --- GET /items ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemsQuery:
    """``GET /items``: the ids asked (``ids``) or how many to draw (``count``), and the mode.

    Exactly one of ``ids`` and ``count`` is set.
    """

    ids: tuple[int, ...] | None
    count: int | None
    mode: Mode

    def resolve(self, items: int, rng: random.Random | None = None) -> list[int]:
        """The ids to read: those asked, or ``count`` drawn uniformly from 1 to ``items``."""
        if self.ids is not None:
            return list(self.ids)
        assert self.count is not None
        return (rng or random).choices(range(1, items + 1), k=self.count)


def parse_items_query(pairs: Iterable[tuple[str, str]]) -> ItemsQuery:
    """The decoded query parameters of ``GET /items``, validated, or InvalidArgument.

    An unknown or repeated parameter is refused first, then ``ids``/``count``, then ``mode``.
    """
    given: dict[str, str] = {}
    for name, value in pairs:
        if name not in ITEMS_PARAMETERS:
            raise InvalidArgument(f"{quote(name)}: unknown query parameter (ids, count, mode)")
        if name in given:
            raise InvalidArgument(f"{name}: given more than once")
        given[name] = value
    ids_text, count_text = given.get("ids"), given.get("count")
    if ids_text is None and count_text is None:
        raise InvalidArgument("ids: required (or count), none given")
    if ids_text is not None and count_text is not None:
        raise InvalidArgument("ids: give either ids or count, not both")
    ids: tuple[int, ...] | None = None
    count: int | None = None
    if ids_text is not None:
        parts = ids_text.split(",", MAX_IDS)  # one more than allowed is enough to refuse
        if len(parts) > MAX_IDS:
            raise InvalidArgument(f"ids: more than {MAX_IDS} ids")
        ids = tuple(parse_id(part, "ids") for part in parts)
    elif count_text is not None:
        if _ID.fullmatch(count_text) is None or not 1 <= int(count_text) <= MAX_IDS:
            raise InvalidArgument(
                f"count: {quote(count_text)} is not an integer from 1 to {MAX_IDS}"
            )
        count = int(count_text)
    mode_text = given.get("mode", "any")
    mode = _MODES.get(mode_text)
    if mode is None:
        raise InvalidArgument(f"mode: {quote(mode_text)} is neither any nor each")
    return ItemsQuery(ids, count, mode)


# --- POST /orders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    item_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Order:
    """A valid order; its ``lines`` in ascending ``item_id`` (the order stock is taken in)."""

    customer_id: str
    lines: tuple[Line, ...]


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_unknown(fields: dict[str, object], known: tuple[str, ...], where: str) -> None:
    for name in fields:
        if name not in known:
            raise InvalidArgument(f"{where}: unknown field {quote(name)}")


def _integer(fields: dict[str, object], name: str, where: str, high: int) -> int:
    """``fields[name]``: a JSON integer (not a float, string or boolean) from 1 to ``high``."""
    if name not in fields:
        raise InvalidArgument(f"{where}{name}: required")
    value = fields[name]
    if type(value) is not int or not 1 <= value <= high:
        raise InvalidArgument(f"{where}{name}: {quote(value)} is not an integer from 1 to {high}")
    return value


def _line(index: int, value: object) -> Line:
    where = f"lines[{index}]"
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: not an object but {json_kind(value)}")
    _refuse_unknown(value, LINE_FIELDS, where)
    where += "."
    item_id = _integer(value, "item_id", where, MAX_ID)
    quantity = _integer(value, "quantity", where, MAX_QUANTITY)
    return Line(item_id, quantity)


def parse_order(body: bytes) -> Order:
    """A ``POST /orders`` body, a JSON object of at most 64 KiB, validated, or InvalidArgument.

    Unknown fields are refused first (at each level), then ``customer_id``, then ``lines`` one
    by one, then an ``item_id`` given twice.
    """
    if len(body) > MAX_BODY:
        raise InvalidArgument(f"body: larger than {MAX_BODY} bytes")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"body: not JSON: {str(exc)[:SHOWN]}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"body: not a JSON object but {json_kind(value)}")
    _refuse_unknown(value, ORDER_FIELDS, "body")

    if "customer_id" not in value:
        raise InvalidArgument("customer_id: required")
    customer_id = value["customer_id"]
    if not isinstance(customer_id, str):
        raise InvalidArgument(f"customer_id: not a string but {json_kind(customer_id)}")
    if not 1 <= len(customer_id) <= MAX_CUSTOMER_ID:
        raise InvalidArgument(
            f"customer_id: {len(customer_id)} characters, want 1 to {MAX_CUSTOMER_ID}"
        )
    if "\x00" in customer_id or not _encodable(customer_id):
        # PostgreSQL's text (and jsonb) hold no NUL, and a lone surrogate is no UTF-8.
        raise InvalidArgument(f"customer_id: {quote(customer_id)} holds a NUL or a lone surrogate")

    if "lines" not in value:
        raise InvalidArgument("lines: required")
    raw_lines = value["lines"]
    if not isinstance(raw_lines, list):
        raise InvalidArgument(f"lines: not an array but {json_kind(raw_lines)}")
    if not 1 <= len(raw_lines) <= MAX_LINES:
        raise InvalidArgument(f"lines: {len(raw_lines)} lines, want 1 to {MAX_LINES}")
    lines = [_line(i, raw) for i, raw in enumerate(raw_lines)]
    seen: dict[int, int] = {}
    for i, line in enumerate(lines):
        first = seen.setdefault(line.item_id, i)
        if first != i:
            raise InvalidArgument(
                f"lines[{i}].item_id: {line.item_id} is in lines[{first}] already"
            )
    lines.sort(key=lambda line: line.item_id)
    return Order(customer_id, tuple(lines))
