from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from bench.launch.http_raw import expand
from bench.launch.probes import HttpExpect, HttpProbe, HttpRequest, HttpSpec
from bench.launch.verify import (
    Tolerance,
    Vectors,
    VectorsError,
    case_parts,
    differences,
    load_vectors,
)

REPO = Path(__file__).resolve().parents[2]


def test_equal_bodies_have_no_differences() -> None:
    body = {"a": [1, {"b": "x"}], "c": True}
    assert differences(body, json.loads(json.dumps(body))) == []


def test_differences_name_the_path() -> None:
    found = differences({"parts": {"pricing": {"value": 1}}}, {"parts": {"pricing": {"value": 2}}})
    assert found == ["body.parts.pricing.value: expected 1, got 2"]


def test_missing_and_unexpected_keys() -> None:
    assert differences({"a": 1}, {"b": 1}) == ["body.a: missing", "body.b: unexpected"]


def test_list_length_and_types_matter() -> None:
    assert differences([1, 2], [1]) == ["body: expected 2 items, got 1"]
    assert differences(1, 1.0) == ["body: expected 1, got 1.0"]
    assert differences(True, 1) == ["body: expected true, got 1"]


def test_any_string_matches_only_non_empty_strings() -> None:
    expected = {"message": "<any-string>"}
    assert differences(expected, {"message": "bad item id"}) == []
    assert differences(expected, {"message": ""}) == ["body.message: expected a non-empty string"]
    assert differences(expected, {"message": 3}) == ["body.message: expected a non-empty string"]


def test_the_fanout_vectors_load() -> None:
    vectors = load_vectors(REPO / "systems" / "fanout" / "vectors.json")
    assert vectors.params["fanout"] == 6
    assert any(case.expect is not None and case.expect["status"] == 400 for case in vectors.cases)


def test_a_malformed_vectors_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps({"cases": [{"name": "x", "request": {"path": "/"}}]}))
    with pytest.raises(VectorsError) as err:
        load_vectors(path)
    assert str(err.value) == f"{path}: cases.0: Value error, give both request and expect"


def test_a_case_the_probe_cannot_send_names_the_case_and_field() -> None:
    vectors = Vectors.model_validate(
        {"cases": [{"name": "x", "request": {"path": "no-slash"}, "expect": {"status": 200}}]}
    )
    with pytest.raises(VectorsError) as err:
        case_parts(vectors, HttpRequest, HttpExpect, "http")
    assert str(err.value).startswith("cases[0] (x): path: String should match pattern")


# --- raw cases (bench/launch/http_raw.py) --------------------------------------------------------


def _case_error(request: dict[str, object]) -> str:
    vectors = Vectors.model_validate(
        {"cases": [{"name": "x", "request": request, "expect": {"status": 400, "body": None}}]}
    )
    with pytest.raises(VectorsError) as err:
        case_parts(vectors, HttpRequest, HttpExpect, "http")
    return str(err.value)


def test_a_raw_case_is_checked_when_read() -> None:
    assert _case_error({"raw": "GET /?q={x HTTP/1.1\r\n\r\n"}).startswith(
        "cases[0] (x): raw: Value error, a lone '{' at character 8"
    )
    assert "raw is the whole request" in _case_error({"raw": "GET / HTTP/1.1", "method": "GET"})
    assert "raw is the whole request" in _case_error({"raw": "x", "path": "/"})
    assert "give path (with method and body) or raw" in _case_error({})


def test_a_raw_case_with_expected_headers_parses() -> None:
    vectors = Vectors.model_validate(
        {
            "cases": [
                {
                    "name": "big",
                    "request": {"raw": "GET /?q={x*9000} HTTP/1.1\r\nHost: x\r\n\r\n"},
                    "expect": {
                        "status": 414,
                        "headers": {"Content-Type": "application/json"},
                        "body": {"error": {"code": "uri_too_long", "message": "<any-string>"}},
                    },
                }
            ]
        }
    )
    [(_, request, expect)] = case_parts(vectors, HttpRequest, HttpExpect, "http")
    assert request.raw is not None
    assert request.path is None
    assert len(expand(request.raw)) == len("GET /?q= HTTP/1.1\r\nHost: x\r\n\r\n") + 9000
    assert expect.headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize("pattern", ["fanout", "workerpool"])
def test_every_raw_vector_expands_and_expects_the_envelope(pattern: str) -> None:
    vectors = load_vectors(REPO / "systems" / pattern / "vectors.json")
    raw = [(n, r, e) for n, r, e in case_parts(vectors, HttpRequest, HttpExpect, "http") if r.raw]
    assert len(raw) >= 30
    for name, request, expect in raw:
        assert request.raw is not None
        expand(request.raw)
        if expect.status >= 400:
            assert expect.headers["Content-Type"] == "application/json", name
            assert set(expect.body) == {"error"}, name
            assert expect.body["error"]["message"] == "<any-string>", name


def _answer_once(answer: bytes) -> tuple[int, threading.Thread, list[bytes]]:
    """A server on 127.0.0.1 that reads one request head, sends ``answer`` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            seen.append(data)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return int(listener.getsockname()[1]), thread, seen


@pytest.mark.timeout(30)
def test_the_http_probe_sends_raw_cases_and_compares_status_headers_and_body() -> None:
    envelope = b'{"error":{"code":"bad_request","message":"malformed request"}}'
    answer = (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(envelope)}\r\n\r\n".encode()
        + envelope
    )
    port, thread, seen = _answer_once(answer)
    vectors = Vectors.model_validate(
        {
            "cases": [
                {
                    "name": "garbage",
                    "request": {"raw": "\u0000{!*3}\r\n\r\n"},
                    "expect": {
                        "status": 431,
                        "headers": {"content-type": "application/json"},
                        "body": {"error": {"code": "bad_request", "message": "<any-string>"}},
                    },
                }
            ]
        }
    )
    problems = HttpProbe().verify(HttpSpec(), "127.0.0.1", port, vectors, timeout_s=5)
    thread.join(timeout=5)
    assert seen == [b"\x00!!!\r\n\r\n"]
    assert problems == [
        "garbage: status: expected 431, got 400",
        "garbage: header content-type: expected 'application/json', got 'text/plain'",
    ]


def test_one_case_in_each_probe_s_terms() -> None:
    from bench.launch.grpc_probe import GrpcExpect, GrpcRequest

    vectors = Vectors.model_validate(
        {
            "cases": [
                {
                    "name": "top 2",
                    "probes": {
                        "http": {
                            "request": {"method": "POST", "path": "/v1/recommend", "body": {}},
                            "expect": {"status": 400, "body": {}},
                        },
                        "grpc": {
                            "request": {"method": "/r.R/Recommend", "message": {}},
                            "expect": {"code": "INVALID_ARGUMENT", "details": "<any-string>"},
                        },
                    },
                },
                {
                    "name": "over HTTP only",
                    "request": {"path": "/healthz"},
                    "expect": {"status": 200, "body": {}},
                },
            ]
        }
    )
    http = case_parts(vectors, HttpRequest, HttpExpect, "http")
    assert [(name, r.method, e.status) for name, r, e in http] == [
        ("top 2", "POST", 400),
        ("over HTTP only", "GET", 200),
    ]
    grpc = vectors.cases[0].exchange("grpc")
    assert grpc is not None
    assert grpc.expect["code"] == "INVALID_ARGUMENT"
    # The plain case is the HTTP probe's form: the gRPC probe's models refuse it, by name.
    with pytest.raises(VectorsError, match=r"cases\[1\] \(over HTTP only\)"):
        case_parts(vectors, GrpcRequest, GrpcExpect, "grpc")


def test_a_case_needs_a_form() -> None:
    with pytest.raises(ValueError, match="give request and expect, or probes"):
        Vectors.model_validate({"cases": [{"name": "empty"}]})
    with pytest.raises(ValueError, match="give both request and expect"):
        Vectors.model_validate({"cases": [{"name": "half", "request": {"path": "/"}}]})
    only_grpc = Vectors.model_validate(
        {"cases": [{"name": "g", "probes": {"grpc": {"request": {}, "expect": {}}}}]}
    )
    with pytest.raises(VectorsError, match="no case for the http probe"):
        case_parts(only_grpc, HttpRequest, HttpExpect, "http")


def test_a_tolerance_lets_floats_differ_by_that_much_and_no_more() -> None:
    loose = Tolerance(rel=1e-3, abs=1e-4)
    assert differences({"x": [0.12345, 2]}, {"x": [0.12349, 2.0]}, tolerance=loose) == []
    assert differences([0.0], [0.00005], tolerance=loose) == []
    found = differences({"x": [1.0]}, {"x": [1.01]}, tolerance=loose)
    assert len(found) == 1
    assert found[0].startswith("body.x[0]: expected 1.0 ±")
    # Without one, floats must be equal; booleans and strings are never "close".
    assert differences([0.12345], [0.12349]) != []
    assert differences([1.0], [True], tolerance=loose) != []
    assert differences(["1.0"], [1.0], tolerance=loose) != []


def test_the_inference_vectors_carry_their_tolerance(tmp_path: Path) -> None:
    vectors = load_vectors(REPO / "systems" / "inference" / "vectors.json")
    assert vectors.tolerance is not None
    assert vectors.tolerance.rel > 0
    bad = tmp_path / "vectors.json"
    bad.write_text(json.dumps({"tolerance": {"rel": -1}, "cases": [{"name": "x", "request": {},
                                                                    "expect": {}}]}))  # fmt: skip
    with pytest.raises(VectorsError, match=r"vectors.json: tolerance\.rel"):
        load_vectors(bad)
