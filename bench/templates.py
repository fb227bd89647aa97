"""`{placeholder}` templates in system.toml strings: rendering them, and finding their names.

A string that is exactly one placeholder, as a table's value, keeps the value's own type
(`when = "{inprocess}"` is a boolean); items of a list (command arguments) stay strings.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

_SINGLE = string.Formatter()


def placeholders(template: str) -> list[str]:
    """The names a template uses (ValueError when it is malformed)."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def render(templates: list[str], values: Mapping[str, object]) -> list[str]:
    """A command's arguments, each rendered."""
    return [t.format_map(values) for t in templates]


def render_table(value: Any, values: Mapping[str, object], *, typed: bool = True) -> Any:
    """Every string of a TOML value rendered; a table's value that is one placeholder keeps the
    parameter's type (items of a list, such as command arguments, stay strings)."""
    if isinstance(value, str):
        parts = list(_SINGLE.parse(value))
        if len(parts) == 1 and parts[0][0] == "" and parts[0][1] and not parts[0][2]:
            name = parts[0][1]
            if typed and name in values and not parts[0][3]:
                return values[name]
        return value.format_map(values)
    if isinstance(value, dict):
        return {k: render_table(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_table(v, values, typed=False) for v in value]
    return value


def strings(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string in a TOML value, with where it is (`scenario.loadgen.path`)."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in strings(v, f"{where}[{i}]")]
    return []
