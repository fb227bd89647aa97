"""Probes: how the harness asks a process whether it is ready and whether it answers correctly.

One small protocol, three kinds (the composition root, `bench.cli`, names them):

- `http`: ready when `GET path` answers 2xx; vectors are HTTP requests with the status, JSON
  body and (optionally) header fields expected. A case's request is either `method`, `path` and
  `body`, sent on one kept-alive connection, or `raw`: bytes sent as they are on a fresh
  connection (malformed and oversized requests; the syntax is `bench.launch.http_raw`'s);
- `grpc` (`bench.launch.grpc_probe`): ready when the standard `grpc.health.v1.Health/Check`
  says SERVING; vectors are unary calls with the status code and message expected;
- `tcp`: ready when the port accepts a connection (a database); it checks no vectors.

A probe's table in system.toml (`probe = {kind = "http", path = "/healthz"}`) is checked by its
`spec_model` when the catalog is read.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bench.launch.http_raw import RawHttpError, RawResponse, exchange, expand
from bench.launch.outputs import OutputError, header_values
from bench.launch.verify import Vectors, case_parts, differences


class Probe(Protocol):
    """Readiness and conformance of one kind of server."""

    spec_model: type[BaseModel]

    def ready(self, spec: BaseModel, host: str, port: int) -> bool:
        """True once the process serves; asked repeatedly until it is, or until a time-out."""
        ...

    def verify(self, spec: BaseModel, host: str, port: int, vectors: Vectors) -> list[str]:
        """Every way the answers depart from the vectors; raises VectorsError on a bad case."""
        ...


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSpec(_Model):
    path: str = Field(default="/healthz", pattern=r"^/", description="answers 2xx when ready")
    header_commands: dict[str, list[str]] = Field(
        default={},
        description="headers sent with every vector (not with the readiness check) whose value a "
        "command prints, run once, e.g. a signed token; write paths with `{root}`",
    )


def _expandable(text: str) -> str:
    try:
        expand(text)
    except RawHttpError as e:
        raise ValueError(str(e)) from None
    return text


class HttpRequest(_Model):
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] = "GET"
    path: str | None = Field(default=None, pattern=r"^/")
    body: Any = None
    #: The request's bytes, as `bench.launch.http_raw.expand` reads them; instead of the above.
    raw: Annotated[str, AfterValidator(_expandable)] | None = None

    @model_validator(mode="after")
    def _path_or_raw(self) -> HttpRequest:
        if self.raw is None and self.path is None:
            raise ValueError("give path (with method and body) or raw")
        if self.raw is not None and self.model_fields_set & {"method", "path", "body"}:
            raise ValueError("raw is the whole request: no method, path or body beside it")
        return self


class HttpExpect(_Model):
    status: int
    body: Any
    #: Header fields expected (names in any case, values exact); others are not checked.
    headers: dict[str, str] = {}


class HttpProbe:
    spec_model: type[BaseModel] = HttpSpec

    def ready(self, spec: BaseModel, host: str, port: int) -> bool:
        assert isinstance(spec, HttpSpec)
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{spec.path}", timeout=1) as answer:
                return bool(200 <= answer.status < 300)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def verify(
        self, spec: BaseModel, host: str, port: int, vectors: Vectors, timeout_s: float = 10.0
    ) -> list[str]:
        assert isinstance(spec, HttpSpec)
        cases = case_parts(vectors, HttpRequest, HttpExpect, "http")
        problems: list[str] = []
        try:
            extra = header_values(spec.header_commands, Path.cwd(), "probe.header_commands")
        except OutputError as e:
            return [str(e)]
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            for name, request, expect in cases:
                if request.raw is not None:
                    data = expand(request.raw)
                    try:
                        raw = exchange(
                            host, port, data, timeout=timeout_s, head=data.startswith(b"HEAD ")
                        )
                    except (OSError, RawHttpError) as e:
                        problems.append(f"{name}: raw request failed: {e}")
                        continue
                    problems += [f"{name}: {p}" for p in _answer_problems(raw, expect, vectors)]
                    continue
                assert request.path is not None  # HttpRequest: path or raw
                body = None if request.body is None else json.dumps(request.body)
                try:
                    conn.request(request.method, request.path, body=body, headers=extra)
                    response = conn.getresponse()
                    content = response.read()
                except (OSError, http.client.HTTPException) as e:
                    problems.append(f"{name}: request failed: {e}")
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                    continue
                answer = RawResponse(
                    response.status, response.reason, tuple(response.getheaders()), content
                )
                problems += [f"{name}: {p}" for p in _answer_problems(answer, expect, vectors)]
        finally:
            conn.close()
        return problems


def _answer_problems(answer: RawResponse, expect: HttpExpect, vectors: Vectors) -> list[str]:
    """Where an answer departs from the expected status, header fields and JSON body."""
    problems: list[str] = []
    if answer.status != expect.status:
        problems.append(f"status: expected {expect.status}, got {answer.status}")
    for field, value in expect.headers.items():
        got = answer.header(field)
        if got != value:
            problems.append(f"header {field}: expected {value!r}, got {got!r}")
    try:
        actual = json.loads(answer.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return [*problems, f"body is not JSON: {answer.body[:120]!r}"]
    return problems + differences(expect.body, actual, tolerance=vectors.tolerance)


class TcpSpec(_Model):
    pass


class TcpProbe:
    spec_model: type[BaseModel] = TcpSpec

    def ready(self, spec: BaseModel, host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    def verify(self, spec: BaseModel, host: str, port: int, vectors: Vectors) -> list[str]:
        return ["a tcp probe checks no test vectors: give the implementation an http or grpc probe"]


def http_ready(host: str, port: int, path: str = "/healthz") -> Callable[[], bool]:
    """Readiness of an HTTP server, for processes started outside a pattern (tools, tests)."""
    spec = HttpSpec(path=path)
    return lambda: HttpProbe().ready(spec, host, port)
