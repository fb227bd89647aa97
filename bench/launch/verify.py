"""Conformance before timing: send a pattern's test vectors and list every answer that differs.

`check()` returns a list of problems (empty means conformant), as TechEmpower's `verify()` does;
an implementation with problems is reported as failed and is not measured. In an expected body,
the string `<any-string>` matches any non-empty string (for free-text error messages).
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.models import ParamValue, first_error

ANY_STRING = "<any-string>"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VectorRequest(_Model):
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] = "GET"
    path: str = Field(pattern=r"^/")
    body: Any = None


class Expectation(_Model):
    status: int
    body: Any


class Case(_Model):
    name: str
    request: VectorRequest
    expect: Expectation


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


def check(host: str, port: int, vectors: Vectors, timeout_s: float = 10.0) -> list[str]:
    problems: list[str] = []
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        for case in vectors.cases:
            body = None if case.request.body is None else json.dumps(case.request.body)
            try:
                conn.request(case.request.method, case.request.path, body=body)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as e:
                problems.append(f"{case.name}: request failed: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                continue
            if response.status != case.expect.status:
                problems.append(
                    f"{case.name}: status: expected {case.expect.status}, got {response.status}"
                )
            try:
                actual = json.loads(raw)
            except json.JSONDecodeError:
                problems.append(f"{case.name}: body is not JSON: {raw[:120]!r}")
                continue
            problems += [f"{case.name}: {d}" for d in differences(case.expect.body, actual)]
    finally:
        conn.close()
    return problems
