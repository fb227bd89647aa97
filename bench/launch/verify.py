"""Conformance before timing: a pattern's test vectors, and where an answer departs from one.

A vectors file holds cases, each a request and the answer expected; what a request and an answer
look like is the probe's business (`bench.launch.probes`: an HTTP request and status, a gRPC
method and status code). A probe's `verify()` returns a list of problems (empty means
conformant), as TechEmpower's `verify()` does; an implementation with problems is reported as
failed and is not measured. In an expected body, the string `<any-string>` matches any non-empty
string (for free-text error messages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.models import ParamValue, first_error

ANY_STRING = "<any-string>"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Case(_Model):
    name: str
    request: dict[str, Any]
    expect: dict[str, Any]


class Vectors(_Model):
    description: str = ""
    params: dict[str, ParamValue] = {}
    cases: list[Case] = Field(min_length=1)


class VectorsError(Exception):
    """A vectors file that cannot be used; one line naming the file and the field."""


def load_vectors(path: Path) -> Vectors:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise VectorsError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise VectorsError(f"{path}: not JSON: {e}") from None
    try:
        return Vectors.model_validate(raw)
    except ValidationError as e:
        raise VectorsError(f"{path}: {first_error(e)}") from None


R = TypeVar("R", bound=BaseModel)
E = TypeVar("E", bound=BaseModel)


def case_parts(vectors: Vectors, request: type[R], expect: type[E]) -> list[tuple[str, R, E]]:
    """Every case's request and answer checked by the probe's own models."""
    out: list[tuple[str, R, E]] = []
    for index, case in enumerate(vectors.cases):
        try:
            out.append(
                (
                    case.name,
                    request.model_validate(case.request),
                    expect.model_validate(case.expect),
                )
            )
        except ValidationError as e:
            raise VectorsError(f"cases[{index}] ({case.name}): {first_error(e)}") from None
    return out


def differences(expected: Any, actual: Any, where: str = "body") -> list[str]:
    """Where actual departs from expected, as `body.parts.pricing.value: expected 1, got 2`."""
    if expected == ANY_STRING:
        return (
            [] if isinstance(actual, str) and actual else [f"{where}: expected a non-empty string"]
        )
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(expected.keys() | actual.keys()):
            if key not in actual:
                found.append(f"{where}.{key}: missing")
            elif key not in expected:
                found.append(f"{where}.{key}: unexpected")
            else:
                found += differences(expected[key], actual[key], f"{where}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in differences(e, a, f"{where}[{i}]")
        ]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []
