"""The rpc contract's versioning note, checked: a compatible change interoperates both ways.

Two versions of proto/recommendations/v1 are built at run time from the generated descriptor,
each in a pool of its own (nothing is added to the generated tree): ``old``, before
RecommendRequest.page_size (field 5) existed, and ``new``, with a field 6 added to
RecommendRequest and to Item. Messages encoded by one are decoded by another — the generated
classes (the current version) included — and then over real gRPC, with a server of one version
on 127.0.0.1 and a client of another. REST is the exception the note states: protojson rejects
unknown JSON fields.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.gen import recommendations_pb2_grpc as pb_grpc

SERVICE = "recommendations.v1.Recommendations"
MESSAGES = ("Filters", "RecommendRequest", "Item", "RecommendResponse", "RecommendPage")
Classes = dict[str, type[Message]]


def _version(name: str) -> Classes:
    """The message classes of a version of the contract, in a descriptor pool of their own."""
    file = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(file)
    messages = {m.name: m for m in file.message_type}
    request, item = messages["RecommendRequest"], messages["Item"]
    if name == "old":
        kept = [f for f in request.field if f.number != 5]
        del request.field[:]
        request.field.extend(kept)
    elif name == "new":
        for message, field, kind in (
            (request, "explain", descriptor_pb2.FieldDescriptorProto.TYPE_BOOL),
            (item, "reason", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
        ):
            message.field.add(
                name=field,
                number=6,
                type=kind,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                json_name=field,
            )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(file.SerializeToString())
    return {
        m: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"recommendations.v1.{m}"))
        for m in MESSAGES
    }


OLD, NEW = _version("old"), _version("new")
CURRENT: Classes = {m: getattr(pb, m) for m in MESSAGES}
NEW_REQUEST: dict[str, Any] = {
    "user_id": "alice",
    "limit": 3,
    "filters": {"categories": ["CATEGORY_MUSIC", "CATEGORY_TOOLS"]},
    "features": 8,
    "page_size": 2,
    "explain": True,
}


def _make(classes: Classes, message: str, fields: dict[str, Any]) -> Message:
    return json_format.ParseDict(fields, classes[message](), ignore_unknown_fields=True)


def _fields(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _unknown_numbers(message: Message) -> list[int]:
    unknown = UnknownFieldSet(message)
    return sorted(unknown[k].field_number for k in range(len(unknown)))


def test_the_versions_differ_as_meant() -> None:
    def numbers(classes: Classes) -> list[int]:
        return sorted(f.number for f in classes["RecommendRequest"].DESCRIPTOR.fields)

    assert (numbers(OLD), numbers(CURRENT), numbers(NEW)) == (
        [1, 2, 3, 4],
        [1, 2, 3, 4, 5],
        [1, 2, 3, 4, 5, 6],
    )


def test_generated_code_keeps_the_contract_names() -> None:
    assert pb.DESCRIPTOR.name == "recommendations/v1/recommendations.proto"
    assert pb.RecommendRequest.__module__ == "systems.rpc.gen.recommendations_pb2"
    service = pb.DESCRIPTOR.services_by_name["Recommendations"]
    assert service.full_name == SERVICE
    assert [m.name for m in service.methods] == ["Recommend", "StreamRecommendations"]
    assert pb.DESCRIPTOR.GetOptions().go_package.endswith(
        "/go/gen/recommendations/v1;recommendationsv1"
    )


@pytest.mark.parametrize("reader", ["current", "old"])
def test_a_newer_request_reads_in_older_code_and_keeps_what_it_does_not_know(reader: str) -> None:
    wire = _make(NEW, "RecommendRequest", NEW_REQUEST).SerializeToString()
    classes = CURRENT if reader == "current" else OLD
    older = classes["RecommendRequest"].FromString(wire)
    known = {k: v for k, v in NEW_REQUEST.items() if k in older.DESCRIPTOR.fields_by_name}
    assert _fields(older) == known
    assert _unknown_numbers(older) == ([6] if reader == "current" else [5, 6])
    # Unknown fields are kept: re-encoded by the older code, the newer one reads them all again.
    assert _fields(NEW["RecommendRequest"].FromString(older.SerializeToString())) == NEW_REQUEST


@pytest.mark.parametrize("writer", ["current", "old"])
def test_an_older_request_reads_in_newer_code_with_defaults(writer: str) -> None:
    classes = CURRENT if writer == "current" else OLD
    fields = {"user_id": "bob", "limit": 1000, "features": 4096}
    wire = _make(classes, "RecommendRequest", fields).SerializeToString()
    newer = pb.RecommendRequest.FromString(wire)
    assert (newer.user_id, newer.limit, newer.features, newer.page_size) == ("bob", 1000, 4096, 0)
    assert _fields(NEW["RecommendRequest"].FromString(wire)) == fields
    assert _unknown_numbers(newer) == []


def test_a_newer_response_reads_in_the_generated_code() -> None:
    item = {"item_id": "item-00007", "category": "CATEGORY_GAMES", "score": 0.5, "rank": 1}
    answer = {"user_id": "carol", "items": [item | {"features": [0.25], "reason": "because"}]}
    wire = _make(NEW, "RecommendResponse", answer).SerializeToString()
    current = pb.RecommendResponse.FromString(wire)
    assert current.user_id == "carol"
    assert [(i.item_id, i.category, i.score, i.rank) for i in current.items] == [
        ("item-00007", pb.CATEGORY_GAMES, 0.5, 1)
    ]
    assert list(current.items[0].features) == [0.25]


def test_rest_json_rejects_fields_the_reader_does_not_know() -> None:
    # The note's exception: protojson's mapping refuses unknown fields, so REST clients must not
    # send fields newer than the server; a request without the newer fields still parses.
    with pytest.raises(json_format.ParseError, match="explain"):
        json_format.Parse('{"userId": "a", "limit": 1, "explain": true}', pb.RecommendRequest())
    old_json = json_format.MessageToJson(
        _make(OLD, "RecommendRequest", {"user_id": "a", "limit": 2})
    )
    assert json_format.Parse(old_json, pb.RecommendRequest()).limit == 2


async def _serve(classes: Classes) -> tuple[grpc.aio.Server, int]:
    """A Recommend server of one version: it echoes user_id and names the field numbers it did
    not know in the item id (so the test sees that they arrived and caused no error)."""

    async def recommend(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        user_id = _fields(request).get("user_id", "")
        unknown = ",".join(str(n) for n in _unknown_numbers(request))
        item: dict[str, Any] = {"item_id": f"unknown:{unknown}", "rank": 1}
        if "reason" in classes["Item"].DESCRIPTOR.fields_by_name:
            item["reason"] = "newer server"
        return _make(classes, "RecommendResponse", {"user_id": user_id, "items": [item]})

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Recommend": grpc.unary_unary_rpc_method_handler(
                recommend,
                request_deserializer=classes["RecommendRequest"].FromString,
                response_serializer=classes["RecommendResponse"].SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _both_ways() -> tuple[pb.RecommendResponse, Message]:
    new_server, new_port = await _serve(NEW)
    old_server, old_port = await _serve(OLD)
    try:
        # The generated (current) client against a newer server.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{new_port}") as channel:
            stub = pb_grpc.RecommendationsStub(channel)
            request = pb.RecommendRequest(user_id="dave", limit=2, page_size=1)
            from_newer = await stub.Recommend(request, timeout=10)
        # A newer client (fields 5 and 6 set) against an older server.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{old_port}") as channel:
            call = channel.unary_unary(
                f"/{SERVICE}/Recommend",
                request_serializer=NEW["RecommendRequest"].SerializeToString,
                response_deserializer=NEW["RecommendResponse"].FromString,
            )
            from_older = await call(_make(NEW, "RecommendRequest", NEW_REQUEST), timeout=10)
    finally:
        await new_server.stop(None)
        await old_server.stop(None)
    assert isinstance(from_older, Message)
    return from_newer, from_older


def test_versions_interoperate_over_grpc() -> None:
    from_newer, from_older = asyncio.run(_both_ways())
    # The newer server read the current request whole and answered with a field 6 in the item,
    # which the current client keeps as unknown.
    assert from_newer.user_id == "dave"
    assert [i.item_id for i in from_newer.items] == ["unknown:"]
    assert _unknown_numbers(from_newer.items[0]) == [6]
    # The older server did not know fields 5 and 6 of the newer request, and answered anyway.
    assert _fields(from_older) == {
        "user_id": "alice",
        "items": [{"item_id": "unknown:5,6", "rank": 1}],
    }
