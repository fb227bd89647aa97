"""The inference pattern's gpu profile, on a machine without CUDA: its own commands, rendered from
system.toml by the catalog, start the servers on the CPU fallback, which serve the vectors' first
case and say in their metrics what they run (device cpu, eager: the CUDA graphs had no effect).

On a CUDA machine the same commands choose the GPU (`device = "auto"`) and capture the graphs;
that is `make bench-gpu`, not a test.
"""

from __future__ import annotations

import http.client
import json
import sys

import pytest
import torch

from bench.catalog import load_catalog, template_values
from bench.templates import render
from tests.integration.service_process import ROOT, Proc, metric

pytestmark = pytest.mark.integration


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the fallback of a CPU-only machine")
def test_the_gpu_profile_serves_on_the_cpu_fallback() -> None:
    pattern = load_catalog(ROOT)["inference"]
    params = pattern.resolve_params("gpu", {})
    assert params["device"] == "auto"
    assert params["cuda_graphs"] is True
    impl = pattern.implementations["python-dynamic"]
    values = template_values(pattern, params, port=0, python=sys.executable)
    argv = render([*impl.command, *pattern.args], values)
    argv[argv.index("--listen") + 1] = "127.0.0.1:0"
    proc = Proc(argv)
    try:
        (addr,) = proc.wait_listening(timeout=60)
        assert any("--cuda-graphs has no effect" in line for line in proc.log)
        case = json.loads((ROOT / "systems/inference/vectors.json").read_text())["cases"][0]
        request = case["probes"]["http"]["request"]
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", request["path"], body=json.dumps(request["body"]))
        answer = conn.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["outputs"][0]["shape"] == [1, 10]
        conn.close()
        info = {"device": "cpu", "model": "mlp", "policy": "dynamic", "mode": "eager"}
        found = [line for line in _metrics(addr) if line.startswith("inference_device_info{")]
        assert len(found) == 1
        assert all(f'{k}="{v}"' in found[0] for k, v in info.items())
        assert metric(addr, "inference_batch_size_sum") == 1.0
    finally:
        proc.stop()
    assert proc.popen.returncode == 0


def _metrics(addr: str) -> list[str]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode().splitlines()
    finally:
        conn.close()
