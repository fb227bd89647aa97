"""The inference pattern's Python server (systems/inference/service.py) as real processes on free
loopback ports, on the CPU: the model's outputs under both policies, every bad input of the
contract (and the server serving on after each), the body limit, shedding with 503, batching
seen in the metrics, the parts of a request's time adding up, and start-up and shutdown.

Four servers start together (module-scoped): dynamic and unbatched with the mlp, the transformer,
and a small-queue server for the flood. Load goes over connections opened first, then every
request sent, then every answer read: the requests reach the server in a burst.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from systems.inference import model
from systems.inference.request import body_limit
from tests.integration.service_process import ROOT, Proc, _get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SERVICE = [sys.executable, "-m", "systems.inference.service", "--listen", "127.0.0.1:0"]
SERVERS: dict[str, list[str]] = {
    "dynamic": ["--policy", "dynamic", "--max-batch-size", "64", "--max-queue-delay-us", "2000"],
    "unbatched": ["--policy", "unbatched"],
    "transformer": ["--policy", "unbatched", "--model", "transformer", "--seq-len", "32"],
    "flood": [
        *("--policy", "dynamic", "--max-batch-size", "1", "--max-request-samples", "1"),
        *("--queue", "2"),
    ],
}
MLP = model.Spec("mlp")
INFER = "/v2/models/mlp/infer"
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model weights' folder, shared by the servers and the reference model."""
    folder = tmp_path_factory.mktemp("models")
    model.load(MLP, folder)
    model.load(model.Spec("transformer", 32), folder)
    return folder


@pytest.fixture(scope="module")
def procs(cache: Path) -> Iterator[dict[str, Proc]]:
    """Every server, started at once; each must exit 0 having logged only ``listening on``."""
    started = {
        name: Proc(SERVICE + flags, env={model.CACHE_ENV: str(cache)})
        for name, flags in SERVERS.items()
    }
    try:
        yield started
    finally:
        for proc in started.values():
            proc.stop()
        for proc in started.values():
            assert proc.popen.returncode == 0, proc.log
            assert all(line.startswith("listening on ") for line in proc.log), proc.log


@pytest.fixture(scope="module")
def servers(procs: dict[str, Proc]) -> dict[str, str]:
    """Each server's address, once it listens."""
    return {name: proc.wait_listening(timeout=90)[0] for name, proc in procs.items()}


def connect(addr: str) -> http.client.HTTPConnection:
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=60)


def post(
    addr: str, body: bytes | dict[str, Any], path: str = INFER, method: str = "POST"
) -> Answer:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    conn = connect(addr)
    try:
        conn.request(method, path, body=raw, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def burst(addr: str, bodies: list[bytes]) -> list[Answer]:
    """Open a connection per body, send every request, then read every answer."""
    conns = [connect(addr) for _ in bodies]
    try:
        for conn in conns:
            conn.connect()
        for conn, raw in zip(conns, bodies, strict=True):
            conn.request("POST", INFER, body=raw, headers={"Content-Type": "application/json"})
        answers = []
        for conn in conns:
            resp = conn.getresponse()
            answers.append((resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()))
        return answers
    finally:
        for conn in conns:
            conn.close()


def request(spec: model.Spec, n: int, seed: int = 0, **extra: Any) -> dict[str, Any]:
    inputs = model.example(spec, n, seed)
    tensor = {"name": "input", "shape": list(inputs.shape), "datatype": "FP32"}
    tensor["data"] = inputs.flatten().tolist()
    return {"inputs": [{**tensor, **extra}]}


def zeros(n: int = 1) -> bytes:
    """A cheap mlp request: ``n`` samples of zeros."""
    return json.dumps(request(MLP, n, data=[0] * (n * 512))).encode()


def envelope(body: bytes) -> tuple[str, str]:
    error = json.loads(body)["error"]
    return error["code"], error["message"]


def scrape(addr: str) -> dict[str, float]:
    """Every sample without labels in /metrics, by name."""
    out = {}
    for line in _get(addr, "/metrics").decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["dynamic", "unbatched"])
@pytest.mark.parametrize("n", [1, 3])
def test_answers_are_the_models_outputs(
    servers: dict[str, str], cache: Path, policy: str, n: int
) -> None:
    body = {"id": f"req-{n}", **request(MLP, n, seed=n)}
    status, headers, raw = post(servers[policy], body)
    assert status == 200, raw
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(raw)
    assert answer["model_name"] == "mlp"
    assert answer["id"] == f"req-{n}"
    (out,) = answer["outputs"]
    assert (out["name"], out["shape"], out["datatype"]) == ("logits", [n, 10], "FP32")
    expected = model.Runner(MLP, torch.device("cpu"), cache).run(model.example(MLP, n, n))
    got = torch.tensor(out["data"]).reshape(n, 10)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_the_transformer_answers_its_outputs(servers: dict[str, str], cache: Path) -> None:
    spec = model.Spec("transformer", 32)
    status, _, raw = post(servers["transformer"], request(spec, 2), "/v2/models/transformer/infer")
    assert status == 200, raw
    (out,) = json.loads(raw)["outputs"]
    assert "id" not in json.loads(raw)
    expected = model.Runner(spec, torch.device("cpu"), cache).run(model.example(spec, 2))
    got = torch.tensor(out["data"]).reshape(2, 10)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# --- bad input ----------------------------------------------------------------------------------

ONE = request(MLP, 1)["inputs"][0]
BAD: list[tuple[str, bytes | dict[str, Any], int, str]] = [
    ("not JSON", b'{"inputs": [', 400, "body: not JSON"),
    ("NaN literal", b'{"inputs": [{"data": [NaN]}]}', 400, "body: NaN is not JSON"),
    ("not an object", b"[]", 400, "body: want a JSON object"),
    ("no inputs", {"id": "x"}, 400, "inputs: missing"),
    ("two tensors", {"inputs": [ONE, ONE]}, 400, "inputs: want a list of exactly one tensor"),
    ("wrong name", {"inputs": [{**ONE, "name": "x"}]}, 400, 'inputs[0].name: want "input"'),
    ("wrong dtype", {"inputs": [{**ONE, "datatype": "FP16"}]}, 400, "wrong dtype"),
    ("shape not ints", {"inputs": [{**ONE, "shape": ["1"]}]}, 400, "want a list of integers"),
    ("wrong shape", {"inputs": [{**ONE, "shape": [1, 511]}]}, 400, "want [n, 512], got [1, 511]"),
    ("empty batch", {"inputs": [{**ONE, "shape": [0, 512], "data": []}]}, 400, "empty batch"),
    ("short data", {"inputs": [{**ONE, "data": ONE["data"][1:]}]}, 400, "want 512 numbers"),
    ("a string", {"inputs": [{**ONE, "data": ["1", *ONE["data"][1:]]}]}, 400, "data[0]: want a"),
    ("a boolean", {"inputs": [{**ONE, "data": [*ONE["data"][1:], False]}]}, 400, "a boolean"),
    ("null", {"inputs": [{**ONE, "data": [None, *ONE["data"][1:]]}]}, 400, "got null"),
    ("infinite", {"inputs": [{**ONE, "data": [1e39, *ONE["data"][1:]]}]}, 400, "float32's range"),
    ("oversized", {"inputs": [{**ONE, "shape": [65, 512]}]}, 413, "oversized batch"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_input_is_refused_and_the_server_serves_on(
    servers: dict[str, str], body: bytes | dict[str, Any], status: int, message: str
) -> None:
    got, _, raw = post(servers["dynamic"], body)
    code, text = envelope(raw)
    assert got == status
    assert code == ("invalid_argument" if status == 400 else "resource_exhausted")
    assert message in text
    assert post(servers["dynamic"], zeros())[0] == 200


def test_a_body_over_the_limit_is_413_and_the_connection_closed(servers: dict[str, str]) -> None:
    host, port = servers["dynamic"].rsplit(":", 1)
    over = body_limit(64, MLP.sample_shape) + 1
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {over}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + b'{"inputs": ')
        # The answer comes before the body is read; the server then closes the connection when
        # the client stops sending (aiohttp reads and drops what a client still sends first).
        received = b""
        while b"}}" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):  # to the end: the server closes the connection
            received += chunk
    head_text, _, body = received.partition(b"\r\n\r\n")
    assert head_text.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head_text.lower()
    assert envelope(body) == ("resource_exhausted", f"body: larger than {over - 1} bytes")


def test_paths_and_methods(servers: dict[str, str]) -> None:
    addr = servers["dynamic"]
    status, _, raw = post(addr, zeros(), "/v2/models/resnet/infer")
    assert status == 404
    assert envelope(raw)[0] == "not_found"
    assert "'mlp'" in envelope(raw)[1]
    status, headers, raw = post(addr, b"", INFER, method="GET")
    assert (status, headers["allow"], envelope(raw)[0]) == (405, "POST", "method_not_allowed")
    assert post(addr, b"", "/nowhere", method="GET")[0] == 404
    status, _, raw = post(addr, b"", "/healthz", method="GET")
    assert (status, raw) == (200, b'{"status":"ok"}')
    assert post(addr, b"", "/metrics", method="POST")[0] == 405


# --- load and metrics ---------------------------------------------------------------------------


def test_a_flood_past_the_queue_is_shed_with_503(servers: dict[str, str]) -> None:
    answers = burst(servers["flood"], [zeros()] * 150)
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}
    assert 0 < statuses.count(503) < 150
    for status, headers, raw in answers:
        if status == 503:
            assert headers["retry-after"] == "1"
            assert envelope(raw)[0] == "overloaded"
    assert post(servers["flood"], zeros())[0] == 200


def test_concurrent_requests_are_batched_and_their_time_adds_up(servers: dict[str, str]) -> None:
    addr = servers["dynamic"]
    before = scrape(addr)
    sizes = [1 + i % 3 for i in range(100)]
    answers = burst(addr, [zeros(n) for n in sizes])
    assert [status for status, _, _ in answers] == [200] * 100
    after = scrape(addr)

    def delta(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    assert delta("inference_batch_size_sum") == sum(sizes)
    assert 0 < delta("inference_batch_size_count") < 100
    assert delta("inference_request_duration_seconds_count") == 100
    parts = sum(
        delta(f"inference_{part}_seconds_sum")
        for part in ("queue", "batch_formation", "compute", "answer")
    )
    duration = delta("inference_request_duration_seconds_sum")
    assert math.isclose(parts, duration, rel_tol=0.05), (parts, duration)
    assert delta("inference_forward_seconds_count") == delta("inference_batch_size_count")


def test_the_metrics_say_what_serves(servers: dict[str, str]) -> None:
    text = _get(servers["dynamic"], "/metrics").decode()
    (info,) = [line for line in text.splitlines() if line.startswith("inference_device_info{")]
    labels = dict(re.findall(r'(\w+)="([^"]*)"', info))
    assert labels["device"] == "cpu"
    assert labels["torch"] == torch.__version__
    assert (labels["model"], labels["policy"], labels["mode"]) == ("mlp", "dynamic", "eager")
    assert int(labels["threads"]) == model.forward_threads(0)
    assert info.endswith(" 1.0")
    for code in (200, 400, 404, 405, 413, 500, 503):
        assert f'inference_requests_total{{code="{code}"}}' in text
    assert "inference_queue_depth 0.0" in text


# --- start-up and shutdown ----------------------------------------------------------------------


def test_sigterm_exits_0(procs: dict[str, Proc], servers: dict[str, str]) -> None:
    proc = procs["transformer"]
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=15) == 0


def test_bad_flags_and_a_missing_gpu_are_one_line() -> None:
    cases = {
        ("--policy", "static"): 2,
        ("--policy", "dynamic", "--max-batch-size", "8", "--max-request-samples", "9"): 2,
        ("--policy", "dynamic", "--device", "tpu"): 2,
        ("--policy", "dynamic", "--device", "cpu", "--cuda-graphs"): 1,
    }
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    running = {
        flags: subprocess.Popen(
            [*SERVICE, *flags], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        for flags in cases
    }
    for flags, proc in running.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == cases[flags], (flags, err)
        assert len(err.splitlines()) == 1, err
        assert err.startswith("inference: error: " if cases[flags] == 2 else "inference: refusing")
    assert "--cuda-graphs needs a CUDA device" in err
