"""Probes: how the harness asks a process whether it is ready and whether it answers correctly.

One small protocol, three kinds (the composition root, `bench.cli`, names them):

- `http`: ready when `GET path` answers 2xx; vectors are HTTP requests with the status and JSON
  body expected;
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
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

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


class HttpRequest(_Model):
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] = "GET"
    path: str = Field(pattern=r"^/")
    body: Any = None


class HttpExpect(_Model):
    status: int
    body: Any


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
        cases = case_parts(vectors, HttpRequest, HttpExpect)
        problems: list[str] = []
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            for name, request, expect in cases:
                body = None if request.body is None else json.dumps(request.body)
                try:
                    conn.request(request.method, request.path, body=body)
                    response = conn.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException) as e:
                    problems.append(f"{name}: request failed: {e}")
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
                    continue
                if response.status != expect.status:
                    problems.append(
                        f"{name}: status: expected {expect.status}, got {response.status}"
                    )
                try:
                    actual = json.loads(raw)
                except json.JSONDecodeError:
                    problems.append(f"{name}: body is not JSON: {raw[:120]!r}")
                    continue
                problems += [f"{name}: {d}" for d in differences(expect.body, actual)]
        finally:
            conn.close()
        return problems


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
