"""Protobuf messages from JSON, by method name, for probes and load engines that speak gRPC.

A system.toml names the generated Python modules that define a service (`proto_modules =
["grpc_health.v1.health_pb2"]`); importing them registers their descriptors in protobuf's default
pool, where a method (`/grpc.health.v1.Health/Check`) gives its request and response types. A
request written as JSON (protobuf's JSON mapping) becomes the message, and an answer becomes JSON
again, so vectors and load tables stay plain data and the harness imports no pattern's code by
name.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # protobuf is imported where a message is made: not for every command
    from google.protobuf.descriptor import MethodDescriptor
    from google.protobuf.message import Message


class ProtoError(Exception):
    """A method or message that cannot be found or built; the message is one line."""


def method(name: str, modules: Sequence[str]) -> MethodDescriptor:
    """`/package.Service/Method` from the modules' descriptors."""
    from google.protobuf import descriptor_pool

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ProtoError(f"proto module {module!r} cannot be imported: {e}") from None
    service, _, method_name = name.strip("/").partition("/")
    if not service or not method_name:
        raise ProtoError(f"{name!r}: expected a gRPC method like /package.Service/Method")
    try:
        return descriptor_pool.Default().FindMethodByName(f"{service}.{method_name}")
    except KeyError:
        raise ProtoError(
            f"{name}: no such method in {', '.join(modules) or 'the loaded modules'}"
        ) from None


def request_message(found: MethodDescriptor, data: dict[str, Any]) -> Message:
    from google.protobuf import json_format, message_factory

    cls = message_factory.GetMessageClass(found.input_type)
    try:
        return json_format.ParseDict(data, cls())
    except json_format.ParseError as e:
        raise ProtoError(f"{found.full_name}: request: {e}") from None


def response_class(found: MethodDescriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(found.output_type)


def to_json(msg: Message) -> dict[str, Any]:
    """A message as protobuf's JSON mapping, field names as in the .proto file."""
    from google.protobuf import json_format

    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def varied_fields(
    found: MethodDescriptor, data: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Split a request's top-level fields whose value holds `{rand:N}` off the rest: the rest is
    encoded once; each varied field becomes a `FIELD:KIND:TEMPLATE` that loadgen appends to that
    encoding, drawn afresh per call (protobuf keeps the last value of a non-repeated field)."""
    kept: dict[str, Any] = {}
    varied: list[str] = []
    fields = {f.name: f for f in found.input_type.fields}
    fields |= {f.json_name: f for f in found.input_type.fields}
    for key, value in data.items():
        if not (isinstance(value, str) and "{rand:" in value):
            kept[key] = value
            continue
        field = fields.get(key)
        where = f"{found.full_name}: request.{key}"
        if field is None:
            raise ProtoError(f"{where}: no such field")
        if field.is_repeated:
            raise ProtoError(f"{where}: {{rand:N}} only in a field that is not repeated")
        kind = _kind(field)
        if kind is None:
            raise ProtoError(f"{where}: {{rand:N}} only in a string or integer field")
        varied.append(f"{field.number}:{kind}:{value}")
    return kept, varied


def _kind(field: Any) -> str | None:
    """loadgen's wire kind of a field a per-call value can be given to: strings, and the
    integers sent as varints; None for any other type."""
    from google.protobuf.descriptor import FieldDescriptor as F

    if field.type == F.TYPE_STRING:
        return "string"
    varints = (F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_BOOL, F.TYPE_ENUM)
    return "varint" if field.type in varints else None
