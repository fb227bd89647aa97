"""The edge pattern's processes for tests, each real and on free loopback ports: the Python core,
the trace sink, redis-server, the Go edge; and the edge's keys and tokens (go/bin/edgetoken).

A caller appends what it starts to the ``procs`` fixture, which stops it at the test's end.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.service_process import ROOT, Proc, wait_for

EDGE = str(ROOT / "go" / "bin" / "edge")
EDGETOKEN = str(ROOT / "go" / "bin" / "edgetoken")


def start_core(*flags: str) -> tuple[Proc, str, str]:
    """The core on free ports with ``flags``; its process, gRPC and metrics addresses."""
    argv = [sys.executable, "-m", "systems.rpc.grpc_service", "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0", *flags]  # fmt: skip
    proc = Proc(argv)
    addr, metrics_addr = proc.wait_listening(2, timeout=20)
    return proc, addr, metrics_addr


def start_collector(out: Path) -> tuple[Proc, str]:
    proc = Proc([sys.executable, "-m", "systems.edge.collector", "--listen", "127.0.0.1:0",
                 "--out", str(out)])  # fmt: skip
    return proc, proc.wait_listening(timeout=20)[0]


def start_edge(core: str, *flags: str) -> tuple[Proc, str]:
    """go/bin/edge in front of ``core`` with ``flags``; its process and address."""
    proc = Proc([EDGE, "--listen", "127.0.0.1:0", "--core", core, *flags])
    return proc, proc.wait_listening(timeout=20)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int) -> Proc:
    """Debian's redis-server on ``port``, no persistence; ready when it answers PING."""
    proc = Proc(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no"])  # fmt: skip

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    assert wait_for(pong, timeout=10), f"redis-server on {port} not ready: {proc.log}"
    return proc


def log_lines(proc: Proc) -> list[dict[str, Any]]:
    """The JSON lines the process has written to stderr so far."""
    return [json.loads(line) for line in list(proc.log) if line.startswith("{")]


def terminate(proc: Proc) -> None:
    """SIGTERM, and it exits 0 within 10 s."""
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0, proc.log


def make_keys(folder: Path) -> Path:
    """HS256 and RS256 keys, made by edgetoken in ``folder``."""
    subprocess.run([EDGETOKEN, "keys", "--dir", str(folder)], check=True, capture_output=True)
    return folder


def mint(keys: Path, *flags: str, alg: str = "hs256", sub: str = "alice") -> str:
    """A token signed with ``keys``' key of ``alg``, for ``sub``; ``flags`` add to mint's."""
    key = keys / ("hs256.key" if alg == "hs256" else "rs256.pem")
    argv = [EDGETOKEN, "mint", "--alg", alg, "--key-file", str(key), "--sub", sub, *flags]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def post(
    addr: str, body: bytes | str, headers: dict[str, str] | None = None, path: str = "/v1/recommend"
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST ``body`` to the edge: the status, the headers (lower-case names), the JSON answer."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.request("POST", path, body=data,
                     headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip
        answer = conn.getresponse()
        raw = answer.read()
        found = {k.lower(): v for k, v in answer.getheaders()}
        return answer.status, found, json.loads(raw) if raw else {}
    finally:
        conn.close()
