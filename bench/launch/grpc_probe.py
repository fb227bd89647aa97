"""The grpc probe: readiness through the standard health service, vectors as unary calls.

Readiness is `grpc.health.v1.Health/Check` for `service` (empty: the whole server) answering
SERVING, as Kubernetes' gRPC probes ask. A vector case is

    {"name": "...", "request": {"method": "/pkg.Service/Method", "message": {...}},
     "expect": {"code": "INVALID_ARGUMENT", "message": {...}, "details": "<any-string>"}}

with the request and expected answer in protobuf's JSON mapping; `code` is a gRPC status name
(`OK` by default), `details` the status message when one is expected. The answer's floats are
held within the vectors' `tolerance`, when they give one (as the HTTP probe holds a body's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bench.launch.protobuf import ProtoError, method, request_message, response_class, to_json
from bench.launch.verify import Tolerance, Vectors, VectorsError, case_parts, differences

if TYPE_CHECKING:  # grpc is imported where a call is made: the command line starts without it
    import grpc


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrpcSpec(_Model):
    service: str = Field(default="", description="the health-checked service; empty: the server")
    proto_modules: list[str] = Field(
        default=[], description="generated Python modules defining the vectors' methods"
    )


class GrpcRequest(_Model):
    method: str = Field(pattern=r"^/[\w.]+/\w+$")
    message: dict[str, Any] = {}


class GrpcExpect(_Model):
    code: str = "OK"
    message: dict[str, Any] | None = None
    details: Any = None


def _channel(host: str, port: int) -> grpc.Channel:
    import grpc

    return grpc.insecure_channel(f"{host}:{port}")


class GrpcProbe:
    spec_model: type[BaseModel] = GrpcSpec

    def ready(self, spec: BaseModel, host: str, port: int) -> bool:
        assert isinstance(spec, GrpcSpec)
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with _channel(host, port) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=spec.service), timeout=1)
            except grpc.RpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def verify(
        self, spec: BaseModel, host: str, port: int, vectors: Vectors, timeout_s: float = 10.0
    ) -> list[str]:
        assert isinstance(spec, GrpcSpec)
        import grpc

        cases = case_parts(vectors, GrpcRequest, GrpcExpect, "grpc")
        for _, _, expect in cases:
            if expect.code not in grpc.StatusCode.__members__:
                raise VectorsError(f"expect.code: {expect.code!r} is not a gRPC status name")
        problems: list[str] = []
        with _channel(host, port) as channel:
            for name, request, expect in cases:
                try:
                    found = method(request.method, spec.proto_modules)
                    message = request_message(found, request.message)
                except ProtoError as e:
                    raise VectorsError(f"{name}: {e}") from None
                call: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
                    request.method,
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=response_class(found).FromString,
                )
                found_problems = _check(call, message, expect, timeout_s, vectors.tolerance)
                problems += [f"{name}: {p}" for p in found_problems]
        return problems


def _check(
    call: grpc.UnaryUnaryMultiCallable[Any, Any],
    message: Any,
    expect: GrpcExpect,
    timeout_s: float,
    tolerance: Tolerance | None = None,
) -> list[str]:
    import grpc

    try:
        answer = call(message, timeout=timeout_s)
    except grpc.RpcError as e:
        code = e.code().name
        details = e.details()
        if code != expect.code:
            return [f"code: expected {expect.code}, got {code} ({details})"]
        if expect.details is not None:
            return differences(expect.details, details, "details")
        return []
    if expect.code != "OK":
        return [f"code: expected {expect.code}, got OK"]
    if expect.message is None:
        return []
    return differences(expect.message, to_json(answer), "message", tolerance)
