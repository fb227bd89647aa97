"""The pure pieces of `patternbench engines`' gRPC check: ghz's report, where ghz comes from, its
command line, and the ceiling search's rules (shared with the HTTP check)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.engines import check, check_grpc
from tests.unit.conftest import make_load

REPO = Path(__file__).resolve().parents[2]

#: A real `ghz --format json` report (v0.121.0, -c 4 -n 20 against rpcgrpc), its histogram,
#: latency distribution and per-call details trimmed.
GHZ_REPORT = {
    "date": "2026-11-29T09:47:57Z", "endReason": "normal",
    "options": {
        "call": "recommendations.v1.Recommendations/Recommend", "host": "127.0.0.1:18095",
        "proto": "proto/recommendations/v1/recommendations.proto",
        "import-paths": ["proto/recommendations/v1", ".", "proto"], "insecure": True,
        "load-schedule": "const", "concurrency": 4, "concurrency-schedule": "const",
        "total": 20, "connections": 1, "timeout": 20000000000, "dial-timeout": 10000000000,
        "data": {"features": 16, "limit": 10, "userId": "user-1"}, "binary": False, "CPUs": 1,
    },
    "count": 20, "total": 7408680, "average": 1270089, "fastest": 431418, "slowest": 2881847,
    "rps": 2699.5362196774595, "errorDistribution": {}, "statusCodeDistribution": {"OK": 20},
    "latencyDistribution": [{"percentage": 50, "latency": 1157782}],
    "histogram": [{"mark": 0.000431418, "count": 1, "frequency": 0.05}],
    "details": [{"timestamp": "2026-11-29T09:47:57.87656773Z", "latency": 1320880, "error": "",
                 "status": "OK"}],
}  # fmt: skip


def test_a_ghz_report_gives_its_shape_and_the_calls_answered_ok_per_second() -> None:
    run = check_grpc.parse_ghz(json.dumps(GHZ_REPORT))
    assert (run.concurrency, run.connections, run.calls, run.ok) == (4, 1, 20, 20)
    assert run.seconds == pytest.approx(0.00740868)
    assert run.ok_rps == pytest.approx(GHZ_REPORT["rps"])
    assert run.errors == {}


def test_calls_a_timed_ghz_run_cuts_off_at_its_end_do_not_count() -> None:
    # As in a real `-z 5s -c 32` run: the calls in flight at the end fail with Unavailable.
    cut = GHZ_REPORT | {
        "options": GHZ_REPORT["options"] | {"concurrency": 32, "connections": 2},  # type: ignore[operator]
        "count": 12459, "total": 5_013_659_000,
        "statusCodeDistribution": {"OK": 12458, "Unavailable": 1},
    }  # fmt: skip
    run = check_grpc.parse_ghz(json.dumps(cut))
    assert (run.concurrency, run.connections, run.ok) == (32, 2, 12458)
    assert run.errors == {"Unavailable": 1}
    assert run.ok_rps == pytest.approx(12458 / 5.013659)


@pytest.mark.parametrize("text", ["", "not json", "{}", '{"options": {}, "count": 1}', "[]"])
def test_an_unreadable_ghz_report_is_one_error(text: str) -> None:
    with pytest.raises(check_grpc.GrpcCheckError, match="unreadable ghz report"):
        check_grpc.parse_ghz(text)


def test_ghz_comes_only_from_the_variable_the_makefile_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(check_grpc.GHZ_ENV, raising=False)
    missing = check_grpc.ghz_binary()
    assert isinstance(missing, str)
    assert "make bench-engines" in missing
    monkeypatch.setenv(check_grpc.GHZ_ENV, str(tmp_path / "ghz"))
    missing = check_grpc.ghz_binary()
    assert isinstance(missing, str)
    assert "not an executable file" in missing
    ghz = tmp_path / "ghz"
    ghz.write_text("#!/bin/sh\n")
    ghz.chmod(0o755)
    assert check_grpc.ghz_binary() == ghz


@pytest.fixture(scope="module")
def target() -> check_grpc.Target:
    return check_grpc.find_target(REPO, "rpc/go-grpc", PARTS.kinds())


def test_the_target_is_the_implementation_and_its_own_call(target: check_grpc.Target) -> None:
    assert target.method == "/recommendations.v1.Recommendations/Recommend"
    assert target.request["userId"].startswith("user-{rand:")
    assert target.fixed_request()["userId"] == "user-0"
    command = target.start_command(50051, 50052)
    assert command[0] == "go/bin/rpcgrpc"
    pairs = dict(itertools.pairwise(command))
    assert (pairs["--listen"], pairs["--metrics-listen"]) == ("127.0.0.1:50051", "127.0.0.1:50052")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rpc/nope", "no such pattern/implementation"),
        ("nope/go", "no such pattern/implementation"),
        ("rpc/go-rest", "not a gRPC implementation (probe http)"),
        ("rpc/go-grpc-stream", "makes no unary gRPC call"),
    ],
)
def test_a_target_that_is_not_a_unary_grpc_implementation_is_one_line(
    name: str, message: str
) -> None:
    with pytest.raises(check_grpc.GrpcCheckError, match=re.escape(message)):
        check_grpc.find_target(REPO, name, PARTS.kinds())


def test_ghz_is_pinned_to_the_generators_cpus_and_makes_the_targets_call(
    target: check_grpc.Target,
) -> None:
    cmd = check_grpc.ghz_command(Path("/t/ghz"), target, 50051, [0, 2], 64, 2, 5)
    assert cmd[:4] == ["taskset", "--cpu-list", "0,2", "/t/ghz"]
    pairs = dict(itertools.pairwise(cmd))
    assert pairs["--call"] == "recommendations.v1.Recommendations.Recommend"
    assert json.loads(pairs["--data"]) == target.fixed_request()
    assert (pairs["--concurrency"], pairs["--connections"], pairs["--cpus"]) == ("64", "2", "2")
    assert (pairs["--duration"], pairs["--format"]) == ("5s", "json")
    assert "--insecure" in cmd
    assert cmd[-1] == "127.0.0.1:50051"


def test_loadgens_grpc_request_is_the_same_call_drawn_per_call(
    target: check_grpc.Target, tmp_path: Path
) -> None:
    request = check_grpc.grpc_request(target, 50051, 1000.0, [0], tmp_path, REPO)
    assert request.url == "grpc://127.0.0.1:50051"
    assert request.rate == 1000.0
    assert request.grpc_method == target.method
    assert request.grpc_request == target.request
    assert request.proto_modules == target.proto_modules


def test_on_schedule_means_the_rate_sent_on_time_without_errors() -> None:
    fast = [500] * 100
    assert check.off_schedule(make_load(fast, target=100.0), 100.0) == []
    late = check.off_schedule(make_load(fast, slip_us=8000), 100.0)
    assert "slip p99 over 5 ms" in late
    short = check.off_schedule(make_load(fast, target=100.0, achieved=98.0), 100.0)
    assert "achieved under 99% of the rate" in short
    (failed,) = check.off_schedule(make_load(fast, errors=2), 100.0)
    assert failed == "errors on 2.0% of the requests"
    assert check.off_schedule(make_load(fast, errors=1), 100.0) == []


def test_the_ceiling_search_grows_then_bisects_to_within_5_percent() -> None:
    tried: list[float] = []

    def kept_up(rate: float) -> bool:
        tried.append(rate)
        return rate <= 7_000

    best = check.loadgen_max_rps(kept_up, start=2_000.0)
    assert tried[:4] == [2_000.0, 3_000.0, 4_500.0, 6_750.0]
    assert 0.95 * 7_000 <= best <= 7_000
