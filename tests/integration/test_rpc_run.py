"""`patternbench run rpc` end to end, kept short: four servers over two transports, unary and
streaming calls, verified over each transport before anything is timed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.catalog import load_pattern
from bench.cli import PARTS
from bench.report.write import render
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.store import load_run
from tests.integration.conftest import REPO, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

#: One light rate, one trial, no codec study; features 4 so the answers carry floats.
SHORT_RPC = {"rates": "150", "trials": "1", "codec": "false", "features": "4", "limit": "5",
             "slo": "p99<=500ms,errors<=1%", "implementations": ""}  # fmt: skip
UNARY = ["python-rest", "go-rest", "python-grpc", "go-grpc"]
STREAM = ["python-grpc-stream", "go-grpc-stream"]


@shared_machine
def test_every_server_is_verified_and_measured_over_its_transport(
    options: Callable[..., RunOptions],
) -> None:
    pattern = load_pattern(REPO / "systems" / "rpc" / "system.toml", REPO, PARTS.kinds())
    runner = PatternRun(pattern, options(**SHORT_RPC), QuietProgress(), PARTS)
    runner.execute()
    result = load_run(runner.run_dir / "run.json")

    assert [i.name for i in result.implementations] == UNARY + STREAM
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.verify_problems, impl.stderr_tail)
        (point,) = impl.points
        (trial,) = point.trials
        load = trial.load
        assert load.errors == 0, (impl.name, load.error_kinds)
        # The system counted what the generator sent: the same calls, over either transport.
        method = "StreamRecommendations" if impl.name in STREAM else "Recommend"
        served = trial.server_metrics[f'rpc_requests_total{{code="OK",method="{method}"}}']
        assert abs(served - load.requests) <= max(10, 0.05 * load.requests), impl.name
        # Bytes on the wire: at least the answers' protobuf (5 items of 4 floats) both ways.
        assert load.wire_sent_bytes is not None, impl.name
        assert load.wire_received_bytes is not None, impl.name
        assert load.wire_received_bytes > 5 * 16 * load.requests, impl.name
        assert "cpu_us_per_call" in point.summary, impl.name
        if impl.name in STREAM:
            assert load.stream is not None
            assert load.stream.messages == 5 * load.requests  # page_size 1: one item a message
        else:
            assert load.stream is None

    md, _ = render(result, runner.run_dir, [])
    text = md.read_text()
    assert "## Cost per call" in text
    assert "## Streaming" in text
    assert "- **transport: rest vs grpc** (runtime python, call unary, python-rest vs" in text
    assert "- **call: unary vs stream** (transport grpc, runtime go, go-grpc vs" in text
