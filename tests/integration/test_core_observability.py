"""The rpc pattern's Python gRPC core (systems/rpc/grpc_service.py) as an edge sees it, real
processes on loopback: ``--log-requests`` (a JSON line per call, the request id echoed),
``--otlp-endpoint`` (a span per call, child of the caller's traceparent, in the trace sink
systems/edge/collector.py, flushed on SIGTERM), ``--delay-ms`` (the slow core: DEADLINE_EXCEEDED
by the call's deadline), and none of it with the flags off.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from systems.edge.traces import read_spans
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.gen import recommendations_pb2_grpc as pb_grpc
from tests.integration.edge_stack import log_lines, start_collector, start_core, terminate
from tests.integration.service_process import ROOT, Proc, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SERVICE = "recommendations.v1.Recommendations"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
REQUEST = pb.RecommendRequest(user_id="alice", limit=3)


def test_logs_echoes_and_traces_each_call(procs: list[Proc], tmp_path: Path) -> None:
    out = tmp_path / "traces" / "spans.jsonl"  # the collector makes the folder
    collector, sink = start_collector(out)
    procs.append(collector)
    core, addr, _ = start_core("--log-requests", "--otlp-endpoint", f"http://{sink}/v1/traces")
    procs.append(core)
    with grpc.insecure_channel(addr) as ch:
        stub = pb_grpc.RecommendationsStub(ch)
        metadata = (("x-request-id", "req-1"), ("traceparent", TRACEPARENT))
        answer, call = stub.Recommend.with_call(REQUEST, metadata=metadata, timeout=2.0)
        assert len(answer.items) == 3
        assert ("x-request-id", "req-1") in call.initial_metadata()
        stream = stub.StreamRecommendations(
            REQUEST, metadata=(("x-request-id", "req-2"),), timeout=2.0
        )
        assert len(list(stream)) == 3
        assert ("x-request-id", "req-2") in stream.initial_metadata()
        with pytest.raises(grpc.RpcError) as refused:  # a client's error: logged as a call
            stub.Recommend(pb.RecommendRequest(user_id="a", limit=0), timeout=2.0)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert wait_for(lambda: len(log_lines(core)) == 3), core.log
    first, second, third = log_lines(core)
    assert first["event"] == "call"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert (first["request_id"], first["method"], first["code"]) == ("req-1", "Recommend", "OK")
    # grpc rounds a timeout up a little when it sends it: hence the slack above 2,000.
    assert 1900 < first["deadline_remaining_ms"] <= 2100
    assert 0 <= first["duration_ms"] < 2000
    assert first["trace_id"] == TRACE_ID
    assert len(first["span_id"]) == 16
    assert first["span_id"] != PARENT_ID
    assert (second["request_id"], second["method"]) == ("req-2", "StreamRecommendations")
    assert second["trace_id"] != TRACE_ID  # no traceparent: a trace of its own
    assert (third["request_id"], third["code"]) == (None, "INVALID_ARGUMENT")

    terminate(core)  # the spans still batched are exported before it exits
    spans = read_spans(out)
    (span,) = [s for s in spans if s.trace_id == TRACE_ID]
    assert span.parent_span_id == PARENT_ID
    assert span.span_id == first["span_id"]
    assert span.name == f"/{SERVICE}/Recommend"
    assert (span.service, span.kind) == ("core-python", "SERVER")
    assert span.attributes["rpc.response.status_code"] == "OK"
    assert span.start_ns < span.end_ns
    names = sorted(s.name for s in spans)
    assert names == [f"/{SERVICE}/Recommend"] * 2 + [f"/{SERVICE}/StreamRecommendations"]
    terminate(collector)


def test_a_slow_core_ends_a_call_at_its_deadline(procs: list[Proc]) -> None:
    core, addr, metrics_addr = start_core("--delay-ms", "300", "--log-requests")
    procs.append(core)
    with grpc.insecure_channel(addr) as ch:
        stub = pb_grpc.RecommendationsStub(ch)
        stub.Recommend(REQUEST, timeout=10)  # the connection, made before anything is timed
        for call in (stub.Recommend, lambda r, **kw: list(stub.StreamRecommendations(r, **kw))):
            sent = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                call(REQUEST, timeout=0.1)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - sent < 1.0  # 100 ms and a noisy machine's slack
        sent = time.monotonic()
        assert len(stub.Recommend(REQUEST, timeout=10).items) == 3
        assert time.monotonic() - sent >= 0.25  # the delay, with a timer's rounding

    # The core ended those calls itself (its own count), not only the client's timer.
    def counted(method: str) -> float:
        return metric(metrics_addr, "rpc_requests_total", method=method, code="DEADLINE_EXCEEDED")

    assert wait_for(lambda: counted("Recommend") == counted("StreamRecommendations") == 1)
    codes = [line["code"] for line in log_lines(core)]
    assert codes.count("DEADLINE_EXCEEDED") == 2
    terminate(core)


def test_with_the_flags_off_nothing_is_logged_or_echoed(procs: list[Proc]) -> None:
    core, addr, _ = start_core()
    procs.append(core)
    with grpc.insecure_channel(addr) as ch:
        stub = pb_grpc.RecommendationsStub(ch)
        metadata = (("x-request-id", "req-1"), ("traceparent", TRACEPARENT))
        _, call = stub.Recommend.with_call(REQUEST, metadata=metadata, timeout=5)
        assert "x-request-id" not in dict(call.initial_metadata())
        assert len(list(stub.StreamRecommendations(REQUEST, metadata=metadata, timeout=5))) == 3
    terminate(core)
    assert all(line.startswith("listening on ") for line in core.log), core.log


@pytest.mark.parametrize(
    "flag",
    [
        ["--delay-ms", "-1"],
        ["--delay-ms", "x"],
        ["--otlp-endpoint", "ftp://127.0.0.1:4318"],
        ["--otlp-endpoint", "127.0.0.1:4318"],
        ["--log-requests=yes"],
    ],
)
def test_a_bad_flag_is_one_line_and_status_2(flag: list[str]) -> None:
    argv = [sys.executable, "-m", "systems.rpc.grpc_service", *flag]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert flag[0].split("=")[0] in done.stderr
