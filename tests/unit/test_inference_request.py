"""The inference request's parsing: a valid body as a float32 tensor, every kind of bad body as
its status, code and a message naming the field; the answer's body."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from systems.inference.request import (
    BODY_SLACK,
    MAX_QUOTE,
    RequestError,
    answer_body,
    body_limit,
    parse,
    parse_slowly,
    quote,
)

SHAPE = (4,)
MAX = 3


def tensor(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "input", "shape": [2, 4], "datatype": "FP32"}
    base["data"] = [0.5, -1, 2.25, 0, 1, 2, 3, 4]
    return {**base, **extra}


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def refused(raw: bytes, shape: tuple[int, ...] = SHAPE) -> tuple[int, str, str]:
    with pytest.raises(RequestError) as caught:
        parse(raw, shape, MAX)
    error = json.loads(caught.value.body)["error"]
    return caught.value.status, error["code"], error["message"]


def test_a_valid_request_is_a_float32_tensor_of_its_shape() -> None:
    parsed = parse(body({"id": "r1", "inputs": [tensor()], "parameters": {"x": 1}}), SHAPE, MAX)
    assert parsed.id == "r1"
    assert parsed.samples == 2
    assert parsed.inputs.dtype == torch.float32
    expected = torch.tensor([[0.5, -1, 2.25, 0], [1, 2, 3, 4]], dtype=torch.float32)
    assert torch.equal(parsed.inputs, expected)
    assert parse(body({"inputs": [tensor()]}), SHAPE, MAX).id is None


def test_a_sequence_model_takes_samples_of_two_dimensions() -> None:
    doc = {"inputs": [tensor(shape=[1, 2, 4], data=list(range(8)))]}
    assert parse(body(doc), (2, 4), MAX).inputs.shape == (1, 2, 4)
    status, _, message = refused(body({"inputs": [tensor(shape=[2, 4])]}), (2, 4))
    assert (status, message) == (400, "inputs[0].shape: want [n, 2, 4], got [2, 4]")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body: not JSON"),
        (b"\xff\xfe\x00", "body: not JSON"),
        (b'{"inputs": [{"data": [NaN]}]}', "body: NaN is not JSON"),
        (b'{"inputs": [{"data": [-Infinity]}]}', "body: -Infinity is not JSON"),
        (b"[1, 2]", "body: want a JSON object, got a list"),
        (b"[" * 100_000, "body: not JSON"),
        (body({"id": 7, "inputs": [tensor()]}), "id: want a string, got a number"),
        (body({"id": "x"}), "inputs: missing"),
        (body({"inputs": {}}), "inputs: want a list of exactly one tensor, got an object"),
        (body({"inputs": []}), "inputs: want a list of exactly one tensor, got 0 tensors"),
        (body({"inputs": [tensor(), tensor()]}), "got 2 tensors"),
        (body({"inputs": ["input"]}), "inputs[0]: want a tensor (an object), got a string"),
        (body({"inputs": [tensor(name="x")]}), 'inputs[0].name: want "input", got "x"'),
        (body({"inputs": [tensor(datatype="INT64")]}), "inputs[0].datatype: wrong dtype"),
        (body({"inputs": [tensor(shape="2,4")]}), "inputs[0].shape: want a list of integers"),
        (body({"inputs": [tensor(shape=[2.0, 4])]}), "inputs[0].shape: want a list of integers"),
        (body({"inputs": [tensor(shape=[True, 4])]}), "inputs[0].shape: want a list of integers"),
        (body({"inputs": [tensor(shape=[2, 5])]}), "inputs[0].shape: want [n, 4], got [2, 5]"),
        (body({"inputs": [tensor(shape=[8])]}), "inputs[0].shape: want [n, 4], got [8]"),
        (body({"inputs": [tensor(shape=[-1, 4])]}), "inputs[0].shape: want [n, 4], got [-1, 4]"),
        (body({"inputs": [tensor(shape=[0, 4], data=[])]}), "inputs[0].shape: empty batch"),
        (body({"inputs": [tensor(data=None)]}), "inputs[0].data: want a flat list of 8 numbers"),
        (body({"inputs": [tensor(data=[1] * 7)]}), "want 8 numbers (shape [2, 4]), got 7"),
        (body({"inputs": [tensor(data=[[1] * 4] * 2)]}), "want 8 numbers (shape [2, 4]), got 2"),
        (body({"inputs": [tensor(data=[1, 2, "3", 4, 5, 6, 7, 8])]}), "data[2]: want a number"),
        (body({"inputs": [tensor(data=[1, None, 3, 4, 5, 6, 7, 8])]}), "data[1]: want a number"),
        (body({"inputs": [tensor(data=[1, 2, 3, True, 5, 6, 7, 8])]}), "got a boolean"),
        (body({"inputs": [tensor(data=[1e39, *range(7)])]}), "out of float32's range"),
        (body({"inputs": [tensor(data=[10**400, *range(7)])]}), "out of float32's range"),
    ],
)
def test_each_bad_body_is_400_naming_its_field(raw: bytes, message: str) -> None:
    status, code, got = refused(raw)
    assert (status, code) == (400, "invalid_argument")
    assert message in got
    assert len(got) <= MAX_QUOTE + 100


def test_the_expected_shape_is_in_the_message() -> None:
    _, _, message = refused(body({"inputs": [tensor(shape=[2, 3])]}))
    assert message == "inputs[0].shape: want [n, 4], got [2, 3]"


def test_more_samples_than_a_request_may_carry_is_413_before_the_data_is_read() -> None:
    status, code, message = refused(body({"inputs": [tensor(shape=[MAX + 1, 4], data=[])]}))
    assert (status, code) == (413, "resource_exhausted")
    assert message == "inputs[0].shape: oversized batch: 4 samples, at most 3 a request"


def test_client_text_in_a_message_is_cut() -> None:
    _, _, message = refused(body({"inputs": [tensor(name="x" * 5000)]}))
    assert len(message) < MAX_QUOTE + 60
    assert len(quote("y" * 1000)) == MAX_QUOTE + 1
    assert quote("a") == '"a"'


def test_the_body_limit_allows_every_number_its_32_bytes() -> None:
    assert body_limit(64, (512,)) == 64 * 512 * 32 + BODY_SLACK
    worst = {
        "id": "x" * 100,
        "inputs": [tensor(shape=[3, 4], data=[-1.2345678901234567e-300] * 12)],
    }
    assert len(body(worst)) <= body_limit(MAX, SHAPE)


def test_the_answer_echoes_the_id_and_flattens_the_logits() -> None:
    logits = torch.tensor([[1.5, -2.0], [0.25, 3.0]])
    doc = json.loads(answer_body("mlp", "r1", logits))
    assert doc == {
        "model_name": "mlp",
        "id": "r1",
        "outputs": [
            {"name": "logits", "shape": [2, 2], "datatype": "FP32", "data": [1.5, -2, 0.25, 3]}
        ],
    }
    assert "id" not in json.loads(answer_body("mlp", None, logits))


def test_a_refusal_can_close_the_connection() -> None:
    error = RequestError(413, "resource_exhausted", "body: too large", close=True)
    response = error.response()
    assert response.status == 413
    assert response.content_type == "application/json"
    assert response.keep_alive is False


@pytest.mark.parametrize(
    "doc",
    [
        {"inputs": [tensor()]},
        {"id": "r-1", "inputs": [tensor(parameters={"x": 1})], "parameters": {"y": [1]}},
        {"inputs": [tensor(data=[1, 2, 3, 4, 5, 6, 7, 8])]},  # integers are numbers too
        {"inputs": [tensor(shape=[1, 4], data=[1e-30, -3.4e38, 0.0, -0.0])]},
    ],
)
def test_the_fast_and_the_slow_path_read_a_valid_request_alike(doc: dict[str, Any]) -> None:
    fast, slow = parse(body(doc), SHAPE, MAX), parse_slowly(body(doc), SHAPE, MAX)
    assert fast.id == slow.id
    assert torch.equal(fast.inputs, slow.inputs)
    assert fast.inputs.dtype == torch.float32
