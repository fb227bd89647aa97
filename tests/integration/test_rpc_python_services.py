"""The rpc pattern's two Python servers (systems/rpc/grpc_service.py, rest_service.py) as real
processes on free loopback ports: the ranking vectors over each transport, every error of the
contract (never INTERNAL / 500), health and reflection, the metrics, shedding, graceful shutdown
and the refusal of protobuf's pure-Python backend.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (  # type: ignore[import-untyped]
    ProtoReflectionDescriptorDatabase,
)

from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.gen import recommendations_pb2_grpc as pb_grpc
from tests.integration.service_process import Proc, _get, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "systems" / "rpc" / "ranking_vectors.json").read_text("utf-8"))
SERVICE = "recommendations.v1.Recommendations"
TOLERANCE = 1e-6
#: An answer big enough to take a while: 1,000 items of 4,096 features (16 MB over gRPC).
BIG = pb.RecommendRequest(user_id="a", limit=1000, features=4096)
BIG_JSON = {"userId": "a", "limit": 1000, "features": 4096}

# --- processes ----------------------------------------------------------------------------------


def start_grpc(**flags: object) -> tuple[Proc, str, str]:
    """A gRPC server on free ports; its process, gRPC address and metrics address."""
    argv = [sys.executable, "-m", "systems.rpc.grpc_service", "--listen", "127.0.0.1:0"]
    argv += ["--metrics-listen", "127.0.0.1:0"]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    proc = Proc(argv)
    addr, metrics_addr = proc.wait_listening(2, timeout=20)
    return proc, addr, metrics_addr


def start_rest(**flags: object) -> tuple[Proc, str]:
    argv = [sys.executable, "-m", "systems.rpc.rest_service", "--listen", "127.0.0.1:0"]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    proc = Proc(argv)
    return proc, proc.wait_listening(timeout=20)[0]


def stop_quietly(proc: Proc) -> None:
    """Stop ``proc``; it must exit 0 having logged nothing but its ``listening on`` lines."""
    proc.stop()
    assert proc.popen.returncode == 0, proc.log
    assert all(line.startswith("listening on ") for line in proc.log), proc.log


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[tuple[str, str]]:
    proc, addr, metrics_addr = start_grpc()
    yield addr, metrics_addr
    stop_quietly(proc)


@pytest.fixture(scope="module")
def rest_server() -> Iterator[str]:
    proc, addr = start_rest()
    yield addr
    stop_quietly(proc)


def channel(addr: str) -> grpc.Channel:
    return grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", -1)])


def post(
    addr: str, path: str, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def envelope(body: bytes) -> tuple[str, str]:
    error = json.loads(body)["error"]
    return error["code"], error["message"]


# --- answers, normalised ------------------------------------------------------------------------

Row = tuple[str, int, float, int, list[float]]  # item id, category number, score, rank, features


def rows_of_messages(items: Any) -> list[Row]:
    return [(i.item_id, i.category, i.score, i.rank, list(i.features)) for i in items]


def rows_of_json(items: list[dict[str, Any]]) -> list[Row]:
    return [
        (
            i["itemId"],
            pb.Category.Value(i["category"]),
            i["score"],
            i["rank"],
            i.get("features", []),
        )
        for i in items
    ]


def check_rows(case: dict[str, Any], rows: list[Row]) -> None:
    name = case["name"]
    assert [r[0] for r in rows] == case["item_ids"], name
    assert [r[1] for r in rows] == case["categories"], name
    assert [r[3] for r in rows] == list(range(1, len(rows) + 1)), name
    assert all(abs(r[2] - s) <= TOLERANCE for r, s in zip(rows, case["scores"], strict=True)), name
    want = case.get("features", [[] for _ in rows])
    for r, features in zip(rows, want, strict=True):
        assert len(r[4]) == len(features), name
        assert all(abs(a - b) <= TOLERANCE for a, b in zip(r[4], features, strict=True)), name


def check_pages(case: dict[str, Any], numbers: list[int], sizes: list[int]) -> None:
    size = max(1, case["request"]["page_size"])
    assert numbers == list(range(len(numbers))), case["name"]
    assert all(n == size for n in sizes[:-1]), case["name"]
    assert not sizes or 1 <= sizes[-1] <= size, case["name"]


def as_message(request: dict[str, Any]) -> pb.RecommendRequest:
    return pb.RecommendRequest(
        user_id=request["user_id"],
        limit=request["limit"],
        filters=pb.Filters(categories=request.get("categories", [])),
        features=request.get("features", 0),
        page_size=request.get("page_size", 0),
    )


def as_json(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "userId": request["user_id"],
        "limit": request["limit"],
        "filters": {"categories": request.get("categories", [])},
        "features": request.get("features", 0),
        "pageSize": request.get("page_size", 0),
    }


def cases_by_table() -> dict[tuple[int, int], list[dict[str, Any]]]:
    tables: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for case in VECTORS["cases"]:
        tables.setdefault((case["items"], case["seed"]), []).append(case)
    return tables


# --- vectors ------------------------------------------------------------------------------------


def check_grpc_vectors(addr: str, cases: list[dict[str, Any]]) -> None:
    with channel(addr) as ch:
        stub = pb_grpc.RecommendationsStub(ch)
        for case in cases:
            req = as_message(case["request"])
            if "error" in case:
                for call in (stub.Recommend, lambda r, **kw: list(stub.StreamRecommendations(r))):
                    with pytest.raises(grpc.RpcError) as e:
                        call(req, timeout=10)
                    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case["name"]
                    assert e.value.details() == case["error"], case["name"]
                continue
            answer = stub.Recommend(req, timeout=10)
            assert answer.user_id == req.user_id
            check_rows(case, rows_of_messages(answer.items))
            pages = list(stub.StreamRecommendations(req, timeout=10))
            check_rows(case, [row for p in pages for row in rows_of_messages(p.items)])
            check_pages(case, [p.page for p in pages], [len(p.items) for p in pages])


def check_rest_vectors(addr: str, cases: list[dict[str, Any]]) -> None:
    for case in cases:
        body = as_json(case["request"])
        for path in ("/v1/recommend", "/v1/recommend:stream"):
            status, headers, raw = post(addr, path, body)
            if "error" in case:
                assert status == 400, case["name"]
                assert envelope(raw) == ("invalid_argument", case["error"]), case["name"]
                continue
            assert status == 200, (case["name"], raw)
            if path == "/v1/recommend":
                assert headers["content-type"].startswith("application/json")
                answer = json.loads(raw)
                assert answer["userId"] == body["userId"]
                check_rows(case, rows_of_json(answer.get("items", [])))
            else:
                assert headers["content-type"] == "application/x-ndjson"
                pages = [json.loads(line) for line in raw.splitlines()]
                check_rows(case, rows_of_json([i for p in pages for i in p["items"]]))
                numbers = [p.get("page", 0) for p in pages]  # 0 is left out, as protojson does
                check_pages(case, numbers, [len(p["items"]) for p in pages])


def test_vectors_over_both_transports(grpc_server: tuple[str, str], rest_server: str) -> None:
    tables = cases_by_table()
    default = tables.pop((1000, 1))
    check_grpc_vectors(grpc_server[0], default)
    check_rest_vectors(rest_server, default)
    for (items, seed), cases in tables.items():
        g, addr, _ = start_grpc(items=items, seed=seed)
        r, rest = start_rest(items=items, seed=seed)
        try:
            check_grpc_vectors(addr, cases)
            check_rest_vectors(rest, cases)
        finally:
            stop_quietly(g)
            stop_quietly(r)


# --- errors -------------------------------------------------------------------------------------


def grpc_code(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    """The status a call ends with (a stream read to its end)."""
    try:
        answer = call(*args, **kwargs)
        if not isinstance(answer, bytes | pb.RecommendResponse):
            list(answer)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def test_grpc_errors(grpc_server: tuple[str, str]) -> None:
    addr, metrics_addr = grpc_server
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    with channel(addr) as ch:
        stub = pb_grpc.RecommendationsStub(ch)
        for path in (f"/{SERVICE}/Recommend", f"/{SERVICE}/StreamRecommendations"):
            raw: Any = (ch.unary_unary if path.endswith("Recommend") else ch.unary_stream)(
                path, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            # A length running past the end, a field number 0, a string that is not UTF-8.
            for garbage in (b"\x0a\xff\xff\xff\xff\x0f", b"\x00\x01", b"\x0a\x02\xff\xfe"):
                code, details = grpc_code(raw, garbage, timeout=10)
                assert code == invalid, (path, garbage, details)
                assert details.startswith("not a RecommendRequest"), details
            # Over 1 MiB: refused by grpc before any handler runs.
            code, _ = grpc_code(raw, b"\x0a\x80\x80\x40" + b"u" * (1 << 20), timeout=10)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in (stub.Recommend, stub.StreamRecommendations):
            for req, message in (
                (pb.RecommendRequest(user_id="a", limit=0), "limit: must be 1 to 1000, got 0"),
                (
                    pb.RecommendRequest(user_id="a", limit=5000),
                    "limit: must be 1 to 1000, got 5000",
                ),
                (
                    pb.RecommendRequest(user_id="a", limit=1, filters=pb.Filters(categories=[9])),  # type: ignore[list-item]
                    "filters.categories: must be 1 to 4 (CATEGORY_BOOKS to CATEGORY_TOOLS), got 9",
                ),
            ):
                assert grpc_code(call, req, timeout=10) == (invalid, message)
            big = pb.RecommendRequest(user_id="u" * ((1 << 20) + 1), limit=1)
            assert grpc_code(call, big, timeout=10)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        # 50 ms reaches the handler (BIG takes far longer to build): the server's own count of
        # DEADLINE_EXCEEDED says it stopped the call, not only the client's timer.
        for method, call in (("StreamRecommendations", stub.StreamRecommendations),
                             ("Recommend", stub.Recommend)):  # fmt: skip
            code, _ = grpc_code(call, BIG, timeout=0.05)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            counted = functools.partial(metric, metrics_addr, "rpc_requests_total",
                                        method=method, code="DEADLINE_EXCEEDED")  # fmt: skip
            assert wait_for(lambda: counted() >= 1)  # noqa: B023 (called before the loop moves on)
    text = _get(metrics_addr, "/metrics").decode()
    assert 'code="INTERNAL"' not in text
    assert 'code="UNKNOWN"' not in text
    assert metric(metrics_addr, "rpc_requests_total", method="Recommend", code="INVALID_ARGUMENT")


def test_rest_errors(rest_server: str) -> None:
    addr = rest_server
    for path in ("/v1/recommend", "/v1/recommend:stream"):
        for body, message in (
            ('{"userId": "a", "limit": 1', None),  # not JSON
            (b"\xff\xfe", None),  # not UTF-8
            ("[]", None),
            ('{"userId": "a", "limit": 1, "bogus": 1}', None),  # an unknown field
            ('{"userId": "a", "limit": "ten"}', None),
            ('{"userId": "a", "limit": 1, "filters": {"categories": ["NOPE"]}}', None),
            ({"userId": "a", "limit": 0}, "limit: must be 1 to 1000, got 0"),
            ({"userId": "a", "limit": 5000}, "limit: must be 1 to 1000, got 5000"),
            (
                {"userId": "a", "limit": 1, "filters": {"categories": [9]}},
                "filters.categories: must be 1 to 4 (CATEGORY_BOOKS to CATEGORY_TOOLS), got 9",
            ),
        ):
            status, headers, raw = post(addr, path, body)
            assert status == 400, (path, body, raw)
            assert headers["content-type"].startswith("application/json")
            code, text = envelope(raw)
            assert code == "invalid_argument"
            assert text == message if message else text.startswith("body: not a RecommendRequest")
        for value in ("0", "-5", "1.5", "x", "123456789"):
            status, _, raw = post(addr, path, {"userId": "a", "limit": 1}, {TIMEOUT: value})
            assert status == 400, value
            assert envelope(raw)[1].startswith("Request-Timeout-Ms")
        assert too_large(addr, path) == 413
        status, _, raw = post(addr, path, BIG_JSON, {TIMEOUT: "1"})
        assert status == 504, raw[-200:]
        assert envelope(raw)[0] == "deadline_exceeded"
        status, headers, raw = request(addr, "GET", path)
        assert (status, headers["allow"], envelope(raw)[0]) == (405, "POST", "method_not_allowed")
    status, _, raw = request(addr, "GET", "/v1/nothing")
    assert (status, envelope(raw)[0]) == (404, "not_found")
    status, headers, _ = request(addr, "POST", "/healthz")
    assert (status, headers["allow"]) == (405, "GET")
    text = request(addr, "GET", "/metrics")[2].decode()
    assert 'code="INTERNAL"' not in text
    assert 'code="UNKNOWN"' not in text


TIMEOUT = "Request-Timeout-Ms"


def too_large(addr: str, path: str) -> int:
    """The status of a request whose Content-Length says 1 MiB + 1: answered before the body."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Length", str((1 << 20) + 1))
        conn.endheaders()
        conn.send(b"{")
        return conn.getresponse().status
    finally:
        conn.close()


def request(addr: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- health, reflection, metrics ----------------------------------------------------------------


def test_health_reflection_and_metrics(grpc_server: tuple[str, str], rest_server: str) -> None:
    addr, metrics_addr = grpc_server
    with channel(addr) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(ch).get_services()
        assert SERVICE in services
        assert "grpc.health.v1.Health" in services
        pb_grpc.RecommendationsStub(ch).Recommend(pb.RecommendRequest(user_id="m", limit=1))
    assert json.loads(_get(metrics_addr, "/healthz")) == {"status": "ok"}
    post(rest_server, "/v1/recommend", {"userId": "m", "limit": 1})
    for where in (metrics_addr, rest_server):
        text = _get(where, "/metrics").decode()
        for name in ("rpc_requests_total", "rpc_request_duration_seconds", "rpc_in_flight"):
            assert f"# TYPE {name} " in text, (where, name)
        assert metric(where, "rpc_requests_total", method="Recommend", code="OK") >= 1
        assert metric(where, "rpc_request_duration_seconds_count", method="Recommend") >= 1
        assert 'rpc_requests_total{code="OK",method="StreamRecommendations"}' in text
        assert "rpc_in_flight 0.0" in text


# --- shedding and graceful shutdown -------------------------------------------------------------


def test_grpc_sheds_then_drains_on_sigterm() -> None:
    """One call in flight at most: a second is refused UNAVAILABLE. SIGTERM during a stream the
    client is slow to read: new calls are refused, the stream completes, the process exits 0."""
    proc, addr, metrics_addr = start_grpc(max_in_flight=1, max_lag_ms=0)
    try:
        with channel(addr) as ch:
            stub = pb_grpc.RecommendationsStub(ch)
            req = pb.RecommendRequest(user_id="a", limit=1000, features=4096, page_size=1)
            stream = stub.StreamRecommendations(req, timeout=30)
            first = next(stream)  # the rest waits on flow control until read
            assert wait_for(lambda: metric(metrics_addr, "rpc_in_flight") == 1)
            code, details = grpc_code(stub.Recommend, pb.RecommendRequest(user_id="b", limit=1))
            assert (code, details.startswith("overloaded")) == (grpc.StatusCode.UNAVAILABLE, True)
            assert metric(
                metrics_addr, "rpc_requests_total", method="Recommend", code="UNAVAILABLE"
            )
            proc.popen.send_signal(signal.SIGTERM)
            sent = time.monotonic()

            def refused_for_shutdown() -> bool:
                # Not the admission's "overloaded": the one slot is still held by the stream.
                with channel(addr) as other:
                    late = pb_grpc.RecommendationsStub(other).Recommend
                    code, details = grpc_code(late, pb.RecommendRequest(user_id="c", limit=1),
                                              timeout=5)  # fmt: skip
                return code == grpc.StatusCode.UNAVAILABLE and not details.startswith("overloaded")

            assert wait_for(refused_for_shutdown, timeout=5)
            pages = [first, *stream]
            assert [p.page for p in pages] == list(range(1000))
            assert all(len(p.items) == 1 and len(p.items[0].features) == 4096 for p in pages)
        assert proc.popen.wait(timeout=10) == 0
        assert time.monotonic() - sent < 6.5
    finally:
        stop_quietly(proc)


def test_rest_sheds_then_drains_on_sigterm() -> None:
    proc, addr = start_rest(max_in_flight=1, max_lag_ms=0)
    try:
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        # About a second of json_format's work: 1,000 lines of 256 features.
        body = json.dumps({"userId": "a", "limit": 1000, "features": 256})
        conn.request("POST", "/v1/recommend:stream", body=body)
        resp = conn.getresponse()
        assert resp.status == 200
        first = resp.readline()
        status, headers, raw = post(addr, "/v1/recommend", {"userId": "b", "limit": 1})
        assert (status, headers.get("retry-after"), envelope(raw)[0]) == (503, "1", "overloaded")
        proc.popen.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        lines = [first, *resp.read().splitlines()]
        conn.close()
        pages = [json.loads(line) for line in lines]
        assert [p.get("page", 0) for p in pages] == list(range(1000))
        assert all(len(p["items"][0]["features"]) == 256 for p in pages)
        assert proc.popen.wait(timeout=10) == 0
        assert time.monotonic() - sent < 6.5
    finally:
        stop_quietly(proc)


# --- start-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["grpc_service", "rest_service"])
def test_refuses_the_pure_python_protobuf_backend(module: str) -> None:
    argv = [sys.executable, "-m", f"systems.rpc.{module}", "--listen", "127.0.0.1:0"]
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "refusing to start" in done.stderr
    assert "'upb'" in done.stderr


@pytest.mark.parametrize("flag", [["--items", "0"], ["--max-in-flight", "x"], ["--bogus"]])
def test_a_bad_flag_is_one_line_and_status_2(flag: list[str]) -> None:
    argv = [sys.executable, "-m", "systems.rpc.grpc_service", *flag]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
