"""What loadgen is told to send: a JSON body with its placeholders, a gRPC request with the fields
drawn per call split off, a server stream (pure logic: the command line, no process)."""

from __future__ import annotations

import base64
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.engines.loadgen import LoadgenTable, command
from bench.engines.spec import LoadError, LoadSpec
from systems.rpc.gen import recommendations_pb2 as pb

MODULES = ["systems.rpc.gen.recommendations_pb2"]
RECOMMEND = "/recommendations.v1.Recommendations/Recommend"


def spec(tmp_path: Path) -> LoadSpec:
    return LoadSpec(host="127.0.0.1", port=8111, load_model="open-loop", duration_s=2,
                    warmup_s=1, cpus=[0], workdir=tmp_path, rate=100)  # fmt: skip


def flag(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == name]


def test_a_json_body_is_sent_compact_with_its_content_type(tmp_path: Path) -> None:
    table = LoadgenTable(path="/v1/recommend", method="POST",
                         json_body={"userId": "user-{rand:100}", "limit": 10})  # fmt: skip
    args = command(Path("loadgen"), table, spec(tmp_path), tmp_path / "out.json")
    assert flag(args, "--body") == ['{"userId":"user-{rand:100}","limit":10}']
    assert flag(args, "--header") == ["Content-Type: application/json"]


def test_body_and_json_body_are_one_or_the_other() -> None:
    with pytest.raises(ValidationError, match="one of body, json_body and body_command"):
        LoadgenTable(path="/x", body="a", json_body={"a": 1})


def test_fields_drawn_per_call_are_split_off_the_encoded_request(tmp_path: Path) -> None:
    table = LoadgenTable(grpc_method=RECOMMEND, proto_modules=MODULES,
                         grpc_request={"userId": "user-{rand:100}", "limit": 10,
                                       "features": "{rand:4}"})  # fmt: skip
    args = command(Path("loadgen"), table, spec(tmp_path), tmp_path / "out.json")
    (encoded,) = flag(args, "--grpc-request-base64")
    fixed = pb.RecommendRequest.FromString(base64.b64decode(encoded))
    assert (fixed.user_id, fixed.limit, fixed.features) == ("", 10, 0)
    assert flag(args, "--grpc-vary") == ["1:string:user-{rand:100}", "4:varint:{rand:4}"]
    assert "--grpc-stream" not in args


def test_a_server_stream_is_flagged(tmp_path: Path) -> None:
    table = LoadgenTable(grpc_method=RECOMMEND.replace("/Recommend", "/StreamRecommendations"),
                         proto_modules=MODULES, grpc_stream=True)  # fmt: skip
    assert "--grpc-stream" in command(Path("l"), table, spec(tmp_path), tmp_path / "o.json")
    with pytest.raises(ValidationError, match="grpc_stream needs grpc_method"):
        LoadgenTable(path="/x", grpc_stream=True)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"nope": "{rand:3}"}, "request.nope: no such field"),
        ({"filters": "{rand:3}"}, "only in a string or integer field"),
    ],
)
def test_a_field_that_cannot_be_drawn_is_named(
    tmp_path: Path, request_: dict[str, object], message: str
) -> None:
    table = LoadgenTable(grpc_method=RECOMMEND, proto_modules=MODULES, grpc_request=request_)
    with pytest.raises(LoadError, match=message):
        command(Path("loadgen"), table, spec(tmp_path), tmp_path / "out.json")


def test_a_body_command_runs_once_from_the_patterns_root(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("")
    script = "import pathlib; p = pathlib.Path('counter'); p.write_text(p.read_text() + 'x');"
    script += " print('{\"inputs\": []}', end='')"
    table = LoadgenTable(path="/v2/models/mlp/infer", method="POST",
                         body_command=[sys.executable, "-c", script],
                         headers=["Content-Type: application/json"])  # fmt: skip
    load = replace(spec(tmp_path), root=tmp_path)
    for _ in range(2):
        args = command(Path("loadgen"), table, load, tmp_path / "out.json")
        assert flag(args, "--body") == ['{"inputs": []}']
    assert (tmp_path / "counter").read_text() == "x"


def test_a_failing_body_command_is_one_line(tmp_path: Path) -> None:
    table = LoadgenTable(path="/x", method="POST", body_command=[sys.executable, "-c",
                         "import sys; sys.exit('no such model: resnet')"])  # fmt: skip
    with pytest.raises(LoadError, match="body_command: exit 1: no such model: resnet"):
        command(Path("loadgen"), table, spec(tmp_path), tmp_path / "out.json")


def test_body_json_body_and_body_command_exclude_one_another() -> None:
    with pytest.raises(ValidationError, match="one of body, json_body and body_command"):
        LoadgenTable(path="/x", body="a", body_command=["cat"])


def test_a_grpc_request_command_runs_once_from_the_patterns_root(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("")
    script = "import pathlib; p = pathlib.Path('counter'); p.write_text(p.read_text() + 'x');"
    script += ' print(\'{"userId": "big", "limit": 3, "features": "{rand:4}"}\')'
    table = LoadgenTable(grpc_method=RECOMMEND, proto_modules=MODULES,
                         grpc_request_command=[sys.executable, "-c", script])  # fmt: skip
    load = replace(spec(tmp_path), root=tmp_path)
    for _ in range(2):
        args = command(Path("loadgen"), table, load, tmp_path / "out.json")
        (encoded,) = flag(args, "--grpc-request-base64")
        fixed = pb.RecommendRequest.FromString(base64.b64decode(encoded))
        assert (fixed.user_id, fixed.limit, fixed.features) == ("big", 3, 0)
        assert flag(args, "--grpc-vary") == ["4:varint:{rand:4}"]
    assert (tmp_path / "counter").read_text() == "x"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("import sys; sys.exit('no such model: resnet')", "exit 1: no such model: resnet"),
        ("print('{\"userId\": ')", "the output is not JSON"),
        ("print('[1, 2]')", "the output is not a JSON object"),
    ],
)
def test_a_grpc_request_command_that_fails_is_one_line(
    tmp_path: Path, script: str, message: str
) -> None:
    table = LoadgenTable(grpc_method=RECOMMEND, proto_modules=MODULES,
                         grpc_request_command=[sys.executable, "-c", script])  # fmt: skip
    with pytest.raises(LoadError, match=message) as failed:
        command(Path("loadgen"), table, replace(spec(tmp_path), root=tmp_path), tmp_path / "o")
    assert "\n" not in str(failed.value)
    if "exit" in message:
        assert str(failed.value).startswith("grpc_request_command: ")


def test_grpc_request_and_grpc_request_command_exclude_one_another() -> None:
    with pytest.raises(ValidationError, match="one of grpc_request and grpc_request_command"):
        LoadgenTable(grpc_method=RECOMMEND, grpc_request={"limit": 1}, grpc_request_command=["x"])
    with pytest.raises(ValidationError, match="grpc_request_command needs grpc_method"):
        LoadgenTable(path="/x", grpc_request_command=["x"])


def test_the_inference_grpc_request_is_a_tensor_of_raw_float32(tmp_path: Path) -> None:
    """The inference pattern's command, as its system.toml runs it: one sample's bytes."""
    from systems.inference.gen import grpc_predict_v2_pb2 as infer_pb

    table = LoadgenTable(
        grpc_method="/inference.GRPCInferenceService/ModelInfer",
        proto_modules=["systems.inference.gen.grpc_predict_v2_pb2"],
        grpc_request_command=[sys.executable, "-m", "systems.inference.vectors",
                              "--grpc-request", "--model", "mlp", "--samples", "2"],
    )  # fmt: skip
    load = replace(spec(tmp_path), root=Path(__file__).resolve().parents[2])
    (encoded,) = flag(
        command(Path("loadgen"), table, load, tmp_path / "o"), "--grpc-request-base64"
    )
    request = infer_pb.ModelInferRequest.FromString(base64.b64decode(encoded))
    assert request.model_name == "mlp"
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("input", "FP32", [2, 512])
    assert [len(raw) for raw in request.raw_input_contents] == [2 * 512 * 4]
    assert not tensor.HasField("contents")


def test_a_header_command_s_output_is_the_header_s_value(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("")
    script = "import pathlib; p = pathlib.Path('counter'); p.write_text(p.read_text() + 'x');"
    script += " print('Bearer abc.def.ghi')"
    table = LoadgenTable(path="/v1/recommend", method="POST",
                         header_commands={"Authorization": [sys.executable, "-c", script]},
                         headers=["X-Client-ID: c1"])  # fmt: skip
    load = replace(spec(tmp_path), root=tmp_path)
    for _ in range(2):
        args = command(Path("loadgen"), table, load, tmp_path / "out.json")
        assert flag(args, "--header") == ["Authorization: Bearer abc.def.ghi", "X-Client-ID: c1"]
    assert (tmp_path / "counter").read_text() == "x"


def test_a_header_command_must_print_one_line_and_only_for_http(tmp_path: Path) -> None:
    table = LoadgenTable(path="/x", header_commands={"X-Token": [sys.executable, "-c",
                         "print('a'); print('b')"]})  # fmt: skip
    with pytest.raises(LoadError, match=r"header_commands.X-Token: the output is more than one"):
        command(Path("loadgen"), table, spec(tmp_path), tmp_path / "out.json")
    with pytest.raises(ValidationError, match="header_commands are HTTP headers"):
        LoadgenTable(grpc_method=RECOMMEND, proto_modules=MODULES,
                     header_commands={"X": ["true"]})  # fmt: skip
