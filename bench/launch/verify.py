"""Conformance before timing: a pattern's test vectors, and where an answer departs from one.

A vectors file holds cases, each a request and the answer expected; what a request and an answer
look like is the probe's business (`bench.launch.probes`: an HTTP request and status, a gRPC
method and status code). A probe's `verify()` returns a list of problems (empty means
conformant), as TechEmpower's `verify()` does; an implementation with problems is reported as
failed and is not measured. In an expected body, the string `<any-string>` matches any non-empty
string (for free-text error messages). A file's `tolerance` (`{"rel": 1e-4, "abs": 1e-5}`) lets
an answer's floats differ from the expected ones by that much (`math.isclose`), for answers
computed in floating point (a model's logits), whose last bits depend on the CPU's kernels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.models import ParamValue, first_error

ANY_STRING = "<any-string>"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exchange(_Model):
    request: dict[str, Any]
    expect: dict[str, Any]


class Case(_Model):
    """One request and its answer; for a pattern served over several transports, the same case
    in each probe's terms under `probes` (`{"http": {...}, "grpc": {...}}`). A probe checks the
    cases written for it, and the plain ones."""

    name: str
    request: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None
    probes: dict[str, Exchange] = {}

    @model_validator(mode="after")
    def _one_form(self) -> Case:
        if (self.request is None) != (self.expect is None):
            raise ValueError("give both request and expect")
        if self.request is None and not self.probes:
            raise ValueError("give request and expect, or probes")
        return self

    def exchange(self, probe: str) -> Exchange | None:
        """The case as `probe` sends it; None when it has no form for that probe."""
        if probe in self.probes:
            return self.probes[probe]
        if self.request is not None and self.expect is not None:
            return Exchange(request=self.request, expect=self.expect)
        return None


class Tolerance(_Model):
    """How far an answer's float may be from the expected one: `math.isclose`'s bounds."""

    rel: float = Field(default=0.0, ge=0.0, lt=1.0)
    abs: float = Field(default=0.0, ge=0.0)

    def close(self, expected: float, actual: float) -> bool:
        return math.isclose(expected, actual, rel_tol=self.rel, abs_tol=self.abs)


class Vectors(_Model):
    description: str = ""
    params: dict[str, ParamValue] = {}
    tolerance: Tolerance | None = None
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


def case_parts(
    vectors: Vectors, request: type[R], expect: type[E], probe: str
) -> list[tuple[str, R, E]]:
    """The cases for `probe` (its own form, or the plain one), checked by its own models."""
    out: list[tuple[str, R, E]] = []
    for index, case in enumerate(vectors.cases):
        exchange = case.exchange(probe)
        if exchange is None:
            continue
        own = f".probes.{probe}" if probe in case.probes else ""
        where = f"cases[{index}] ({case.name}){own}"
        try:
            out.append(
                (
                    case.name,
                    request.model_validate(exchange.request),
                    expect.model_validate(exchange.expect),
                )
            )
        except ValidationError as e:
            raise VectorsError(f"{where}: {first_error(e)}") from None
    if not out:
        raise VectorsError(f"no case for the {probe} probe")
    return out


def differences(
    expected: Any, actual: Any, where: str = "body", tolerance: Tolerance | None = None
) -> list[str]:
    """Where actual departs from expected, as `body.parts.pricing.value: expected 1, got 2`;
    with a `tolerance`, numbers (not booleans) where either is a float only need be close."""
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
                found += differences(expected[key], actual[key], f"{where}.{key}", tolerance)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in differences(e, a, f"{where}[{i}]", tolerance)
        ]
    if tolerance is not None and _floats(expected, actual):
        if tolerance.close(expected, actual):
            return []
        return [f"{where}: expected {expected!r} ± (rel {tolerance.rel:g}, abs {tolerance.abs:g}),"
                f" got {actual!r}"]  # fmt: skip
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []


def _floats(expected: Any, actual: Any) -> bool:
    """Two JSON numbers, one at least a float (an integral logit may be written 2 or 2.0)."""
    kinds = (type(expected), type(actual))
    return all(k in (int, float) for k in kinds) and float in kinds
