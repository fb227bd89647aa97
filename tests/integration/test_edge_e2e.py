"""The edge across both runtimes, every process real on loopback: the Go edge (go/bin/edge) in
front of the Python core (systems/rpc/grpc_service.py), with the trace sink and redis-server.

- A JWT-authenticated REST call through the edge to the core and back: the core's answer, the
  request id in both sides' JSON logs and in the answer, and one trace in which the edge's span
  is the parent of the core's.
- The deadline: the core sees the edge's budget less the edge's time (within a millisecond), and
  a slow core ends in a 504 within the budget.
- Refusals, each with a clear answer and nothing crashing: no token, an expired one, a forged
  signature, a missing scope; malformed JSON and an oversized body; the rate limit in Redis, and
  Redis stopped mid-test with the edge failing open and failing closed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from systems.edge.traces import read_spans
from tests.integration.edge_stack import (
    free_port,
    log_lines,
    make_keys,
    mint,
    post,
    start_collector,
    start_core,
    start_edge,
    start_redis,
    terminate,
)
from tests.integration.service_process import ROOT, Proc, metric, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries"),
              pytest.mark.timeout(120)]  # fmt: skip

BODY = json.dumps({"userId": "alice", "limit": 10})
AUDIENCE = ["--jwt-audience", "patternbench-edge", "--jwt-scope", "recommend"]


def expected_top_10() -> dict[str, Any]:
    """The rpc vectors' answer to alice's top 10, the one every implementation must give."""
    cases = json.loads((ROOT / "systems" / "rpc" / "vectors.json").read_text())["cases"]
    case = next(c for c in cases if c["name"] == "top 10")
    answer: dict[str, Any] = case["probes"]["http"]["expect"]["body"]
    return answer


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def core(procs: list[Proc]) -> str:
    """A plain core: its gRPC address."""
    proc, addr, _ = start_core()
    procs.append(proc)
    return addr


def test_an_authenticated_call_crosses_both_runtimes_in_one_trace(
    procs: list[Proc], keys: Path, tmp_path: Path
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    collector, sink = start_collector(spans_file)
    procs.append(collector)
    otlp = f"http://{sink}/v1/traces"
    core, core_addr, _ = start_core("--log-requests", "--otlp-endpoint", otlp)
    procs.append(core)
    edge, addr = start_edge(core_addr, "--auth", "rs256", "--jwt-key-file",
                            str(keys / "rs256.pub.pem"), *AUDIENCE, "--log-requests",
                            "--trace", "otlp", "--otlp-endpoint", otlp)  # fmt: skip
    procs.append(edge)
    token = mint(keys, "--scope", "recommend", alg="rs256")

    status, headers, answer = post(
        addr, BODY, {"Authorization": f"Bearer {token}", "X-Request-ID": "e2e-42"}
    )

    assert status == 200, answer
    want = expected_top_10()
    assert [i["itemId"] for i in answer["items"]] == [i["itemId"] for i in want["items"]]
    assert [i["score"] for i in answer["items"]] == pytest.approx(
        [i["score"] for i in want["items"]], rel=1e-6
    )
    assert headers["x-request-id"] == "e2e-42"
    assert wait_for(lambda: any(x.get("request_id") == "e2e-42" for x in log_lines(core)))
    (core_line,) = [x for x in log_lines(core) if x.get("request_id") == "e2e-42"]
    (edge_line,) = [x for x in log_lines(edge) if x.get("msg") == "request"]
    assert edge_line["request_id"] == "e2e-42"
    assert edge_line["client_id"] == "alice"  # the token's subject
    assert core_line["code"] == "OK"
    assert core_line["trace_id"] == edge_line["trace_id"]

    terminate(edge)  # both flush their batched spans on the way out
    terminate(core)
    assert wait_for(lambda: spans_file.exists() and len(read_spans(spans_file)) >= 3)
    spans = [s for s in read_spans(spans_file) if s.trace_id == edge_line["trace_id"]]
    by_id = {s.span_id: s for s in spans}
    (core_span,) = [s for s in spans if s.service == "core-python"]
    assert core_span.name == "/recommendations.v1.Recommendations/Recommend"
    parent = by_id[core_span.parent_span_id or ""]
    assert parent.service == "edge"
    # The edge's client span of that attempt, under its server span: the trace's root.
    root = by_id[parent.parent_span_id or ""]
    assert root.service == "edge"
    assert root.parent_span_id is None


def test_tokens_that_must_not_pass_get_401_or_403_and_the_edge_serves_on(
    procs: list[Proc], core: str, keys: Path, tmp_path: Path
) -> None:
    edge, addr = start_edge(core, "--auth", "hs256", "--jwt-key-file", str(keys / "hs256.key"),
                            *AUDIENCE)  # fmt: skip
    procs.append(edge)
    other = make_keys(tmp_path / "other")

    def bearer(*flags: str, signer: Path = keys) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint(signer, *flags)}

    cases: dict[str, tuple[dict[str, str], int, str | None]] = {
        "no token": ({}, 401, None),
        "expired": (bearer("--scope", "recommend", "--expired"), 401, "token expired"),
        "forged": (bearer("--scope", "recommend", signer=other), 401, "signature is invalid"),
        "wrong audience": (bearer("--scope", "recommend", "--aud", "x"), 401, "wrong audience"),
        "no scope": (bearer(), 403, None),
    }
    for name, (headers, want, reason) in cases.items():
        status, found, answer = post(addr, BODY, headers)
        assert status == want, (name, answer)
        code = "unauthenticated" if want == 401 else "permission_denied"
        assert answer["error"]["code"] == code, name
        challenge = found.get("www-authenticate", "")
        assert challenge.startswith('Bearer realm="patternbench-edge"'), (name, challenge)
        if reason is not None:
            assert f'error="invalid_token", error_description="{reason}"' in challenge, name
    good = mint(keys, "--scope", "recommend")
    assert post(addr, BODY, {"Authorization": f"Bearer {good}"})[0] == 200
    assert edge.popen.poll() is None


def test_the_core_sees_the_budget_less_the_edge_s_time_and_a_slow_core_ends_in_504(
    procs: list[Proc],
) -> None:
    core, core_addr, _ = start_core("--log-requests", "--delay-ms", "300")
    procs.append(core)
    edge, addr = start_edge(core_addr, "--budget-ms", "200", "--log-requests")
    procs.append(edge)

    # The slow core: 504 by the budget, never after it (generous slack: a shared machine).
    started = time.monotonic()
    status, headers, answer = post(addr, BODY, {"X-Request-ID": "slow-1"})
    took = time.monotonic() - started
    assert status == 504, answer
    assert answer["error"]["code"] == "deadline_exceeded"
    assert headers["x-request-id"] == "slow-1"
    assert 0.19 <= took < 1.5, took
    # A request's own budget (Request-Timeout-Ms), the same way.
    status, _, _ = post(addr, BODY, {"Request-Timeout-Ms": "100", "X-Request-ID": "slow-2"})
    assert status == 504

    # What the core saw: the deadline the edge sent, less the hop. Of five calls, the best hop
    # is under a millisecond, and the core never sees more time than the edge had left.
    for i in range(5):
        post(addr, BODY, {"Request-Timeout-Ms": "150", "X-Request-ID": f"hop-{i}"})
    assert wait_for(lambda: sum(str(x.get("request_id")).startswith("hop-")
                                for x in log_lines(core)) == 5)  # fmt: skip
    sent = {x["request_id"]: x["deadline_ms"] for x in log_lines(edge) if x.get("msg") == "request"}
    seen = {x["request_id"]: x["deadline_remaining_ms"] for x in log_lines(core)
            if str(x.get("request_id")).startswith("hop-")}  # fmt: skip
    hops = [sent[rid] - seen[rid] for rid in seen]
    assert all(h >= -0.1 for h in hops), hops  # the wire rounds up by microseconds at most
    assert min(hops) < 1.0, hops
    assert edge.popen.poll() is None


def test_malformed_and_oversized_bodies_are_refused_at_the_edge(
    procs: list[Proc], core: str
) -> None:
    edge, addr = start_edge(core)
    procs.append(edge)
    status, _, answer = post(addr, b'{"userId": "alice", "limit": ')
    assert status == 400
    assert answer["error"]["code"] == "invalid_argument"
    status, _, answer = post(addr, json.dumps({"userId": "alice", "limit": 10, "colour": 1}))
    assert status == 400
    assert "colour" in answer["error"]["message"]
    status, _, answer = post(addr, b'{"userId": "' + b"a" * (1 << 20) + b'"}')
    assert status == 413
    assert answer["error"]["code"] == "resource_exhausted"
    assert post(addr, BODY)[0] == 200
    assert edge.popen.poll() is None


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_the_redis_rate_limit_and_redis_stopped_mid_test(
    procs: list[Proc], core: str, policy: str
) -> None:
    port = free_port()
    redis = start_redis(port)
    procs.append(redis)
    edge, addr = start_edge(core, "--rate-limit-rps", "2", "--rate-limit-burst", "3",
                            "--rate-limit-store", "redis", "--redis", f"127.0.0.1:{port}",
                            "--rate-limit-fail", policy, "--redis-timeout-ms", "100")  # fmt: skip
    procs.append(edge)
    client = {"X-Client-ID": f"client-{policy}"}

    # The bucket holds 3: the fourth call in a row is refused with a 429 and when to come back.
    statuses = [post(addr, BODY, client)[0] for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    status, headers, answer = post(addr, BODY, client)
    assert status == 429
    assert answer["error"]["code"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1
    assert post(addr, BODY, {"X-Client-ID": "someone-else"})[0] == 200  # a bucket per client

    redis.stop()  # mid-test: the store is gone
    started = time.monotonic()
    status, headers, answer = post(addr, BODY, {"X-Client-ID": "third"})
    assert time.monotonic() - started < 5  # bounded by the store's time-out, not hung
    if policy == "open":
        assert status == 200, answer
    else:
        assert status == 503, answer
        assert headers["retry-after"] == "1"
    assert metric(addr, "edge_ratelimit_store_errors_total", policy=policy) >= 1
    assert edge.popen.poll() is None

    procs.append(start_redis(port))  # back: the edge limits again, without a restart
    fourth = {"X-Client-ID": "fourth"}
    assert wait_for(lambda: post(addr, BODY, fourth)[0] == 200, timeout=10)
    statuses = [post(addr, BODY, fourth)[0] for _ in range(4)]
    assert 429 in statuses, statuses
