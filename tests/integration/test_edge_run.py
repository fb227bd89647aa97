"""`patternbench run edge` end to end, kept short: the direct call and six edges, verified against
the rpc vectors (the auth edge with a minted token), measured, priced against the direct call;
the rate limiters measured again at twice their limit; Redis, the cores and the trace sink started
and stopped with the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.catalog import load_pattern
from bench.cli import PARTS
from bench.report import pricing
from bench.report.write import render
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.store import load_run
from systems.edge.traces import read_spans
from tests.integration.conftest import REPO, shared_machine

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

#: One light rate, one trial; the limiters' limit well above it, so they refuse nothing there.
SHORT_EDGE = {"rates": "120", "trials": "1", "rate_limit_rps": "200", "rate_limit_burst": "20",
              "slo": "p99<=500ms,errors<=1%", "implementations": ""}  # fmt: skip
VARIANTS = ["direct", "edge-python", "edge-go", "edge-auth", "edge-ratelimit-memory",
            "edge-ratelimit-redis", "edge-tracing"]  # fmt: skip


@shared_machine
def test_every_variant_is_verified_measured_and_priced(options: Callable[..., RunOptions]) -> None:
    pattern = load_pattern(REPO / "systems" / "edge" / "system.toml", REPO, PARTS.kinds())
    runner = PatternRun(pattern, options(**SHORT_EDGE), QuietProgress(), PARTS)
    runner.execute()
    result = load_run(runner.run_dir / "run.json")

    assert [i.name for i in result.implementations] == VARIANTS
    for impl in result.implementations:
        assert impl.status == "ok", (impl.name, impl.error, impl.verify_problems, impl.stderr_tail)
        point = impl.points[0]
        assert point.target_rps == 120.0
        (trial,) = point.trials
        assert trial.load.errors == 0, (impl.name, trial.load.error_kinds)
        # Every server of the contract counts its calls under the contract's names.
        served = trial.server_metrics['rpc_requests_total{code="OK",method="Recommend"}']
        assert abs(served - trial.load.requests) <= max(10, 0.05 * trial.load.requests), impl.name
        # The core behind an edge is part of the system: its CPU is measured over the window.
        core = {"direct": None, "edge-go": "core_go", "edge-tracing": "core_python_traced"}
        part = core.get(impl.name, "core_python")
        assert list(trial.system_parts) == ([part] if part else []), impl.name
        if part:
            assert trial.system_parts[part].cpu_seconds > 0, impl.name
    limited = [i for i in result.implementations if i.admits_rps is not None]
    assert [i.name for i in limited] == ["edge-ratelimit-memory", "edge-ratelimit-redis"]
    for impl in limited:
        assert impl.admits_rps == 200.0
        assert [p.target_rps for p in impl.points] == [120.0, 400.0]
        ((_, admitted, _, passed),) = pricing.admission_rows(impl)
        (trial,) = impl.points[1].trials
        assert set(trial.load.error_kinds) == {"HTTP 429"}, (impl.name, trial.load.error_kinds)
        assert passed, (impl.name, admitted)

    # The tracing variant's spans, both services', in the run's folder.
    services = {s.service for s in read_spans(runner.run_dir / "traces" / "spans.jsonl")}
    assert services == {"edge", "core-python"}

    md, _ = render(result, runner.run_dir, [])
    text = md.read_text()
    assert "## Added over direct" in text
    assert "## Admission against the configured limit" in text
    assert "- **feature: none vs auth** (path edge, core python, edge-python vs edge-auth)" in text
    # A feature is contrasted with none, not with another feature.
    assert "feature: auth vs tracing" not in text
