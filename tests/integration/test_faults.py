"""Nothing silent: a process that dies during a trial, or cannot start, is named in the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench.cli import PARTS
from bench.run import PatternRun, QuietProgress, RunOptions
from bench.store import load_run
from tests.integration.conftest import PatternFactory

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("go_binaries")]

Options = Callable[..., RunOptions]


def _run(pattern_factory: PatternFactory, options: RunOptions, edit: Callable[[str], str]) -> Path:
    runner = PatternRun(pattern_factory(toml=edit), options, QuietProgress(), PARTS)
    runner.execute()
    return runner.run_dir / "run.json"


def test_a_support_killed_during_a_trial_makes_the_trial_invalid_and_is_named(
    fanout_variant: PatternFactory, options: Options
) -> None:
    # `timeout` kills the backends' process group (itself included) 2.5 s in, inside the 1 + 3 s
    # window. The service still answers (with its backends missing), so only the harness
    # watching its supports can tell.
    def edit(text: str) -> str:
        return text.replace(
            'command = [\n    "go/bin/latencysim",',
            'command = [\n    "timeout", "-s", "KILL", "2.5", "go/bin/latencysim",',
        )

    path = _run(fanout_variant, options(["go"], trials="1", duration_s="3"), edit)
    impl = load_run(path).implementation("go")
    assert impl.status == "ok", impl.error
    (point,) = impl.points
    (trial,) = point.trials
    assert not trial.valid
    assert not point.valid
    assert any(
        r.startswith("support latencysim (pid ") and "was killed by SIGKILL during the trial" in r
        for r in trial.invalid_reasons
    ), trial.invalid_reasons


def test_an_implementation_killed_during_a_trial_fails_with_the_signal_named(
    fanout_variant: PatternFactory, options: Options
) -> None:
    def edit(text: str) -> str:
        return text.replace(
            'command = ["go/bin/fanout"]',
            'command = ["timeout", "-s", "KILL", "--preserve-status", "2.5", "go/bin/fanout"]',
        )

    path = _run(fanout_variant, options(["go"], trials="1", duration_s="3"), edit)
    impl = load_run(path).implementation("go")
    assert impl.status == "failed"
    assert impl.error == "was killed by SIGKILL during the run", impl.error


def test_a_missing_binary_is_named(fanout_variant: PatternFactory, options: Options) -> None:
    def edit(text: str) -> str:
        return text.replace('command = ["go/bin/fanout"]', 'command = ["go/bin/no-such-fanout"]')

    path = _run(fanout_variant, options(["go"], trials="1"), edit)
    impl = load_run(path).implementation("go")
    assert impl.status == "failed"
    assert impl.error is not None
    assert "go/bin/no-such-fanout: no such file (not built?)" in impl.error, impl.error
