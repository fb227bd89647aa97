"""The `patternbench` command as a user types it: exit codes, one-line errors, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.launch.supervisor import port_in_use
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def patternbench(
    *args: str, root: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env={**os.environ, "PATTERNBENCH_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return ""


def broken_root(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "bench").mkdir()
    folder = tmp_path / "systems" / "fanout"
    folder.mkdir(parents=True)
    (folder / "system.toml").write_text(toml)
    return tmp_path


def test_list_shows_every_implementation() -> None:
    done = patternbench("list")
    assert done.returncode == 0, done.stderr
    assert "python-asyncio" in done.stdout
    assert "go" in done.stdout


def test_a_bad_system_toml_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    text = (REPO / "systems" / "fanout" / "system.toml").read_text()
    root = broken_root(tmp_path, text.replace("port = 8082", 'port = "8082x"'))
    for args in (("list",), ("run", "fanout")):
        done = patternbench(*args, root=root)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(
            "patternbench: systems/fanout/system.toml: implementations.go.port:"
        )


def test_unknown_pattern_impl_and_param_are_usage_errors() -> None:
    done = patternbench("run", "nope")
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "patternbench: no pattern 'nope' (known: fanout, workerpool)",
    )
    done = patternbench("run", "fanout", "--impl", "rust")
    assert done.returncode == 2
    assert "--impl rust: fanout has no such implementation" in done.stderr
    done = patternbench("run", "fanout", "--param", "fanout=many")
    assert done.returncode == 2
    assert "--param fanout=many: expected int like 4" in done.stderr


def test_report_of_a_corrupt_result_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "run.json").write_text('{"schema_version": 1, "run_id": 3}')
    done = patternbench("report", "r1", "--runs-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"patternbench: {tmp_path / 'r1' / 'run.json'}: ")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.usefixtures("go_binaries")
def test_ctrl_c_mid_run_leaves_no_process_and_no_half_written_file(
    tmp_path: Path, port_offset: int
) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "fanout", "--impl", "go", "--runs-dir", str(runs),
         "--run-id", "interrupted", "--port-offset", str(port_offset),
         "--param", "duration_s=30", "--param", "warmup_s=1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    harness = psutil.Process(proc.pid)
    started: set[psutil.Process] = set()
    deadline = time.monotonic() + 40
    # Wait until the load generator runs: system, simulator and loadgen are all up.
    while not any("bin/loadgen" in _cmdline(p) for p in started):
        assert time.monotonic() < deadline, "the run never reached the load phase"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
        try:
            started |= set(harness.children(recursive=True))
        except psutil.NoSuchProcess:
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    _, alive = psutil.wait_procs(list(started), timeout=5)
    assert alive == []
    for port in (8082, 9101, 9102):
        assert not port_in_use(port + port_offset)
    leftovers = [p.name for p in (runs / "interrupted").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (runs / "interrupted" / "run.json").exists()


def test_help_of_every_command_renders() -> None:
    for command in ("list", "run", "load", "report", "engines"):
        done = patternbench(command, "--help")
        assert done.returncode == 0, done.stderr
        assert "usage: patternbench" in done.stdout


def test_load_flags_are_shorthands_for_their_parameters() -> None:
    done = patternbench("run", "fanout", "--rates", "100,nope")
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "patternbench: --param rates=100,nope: expected rates like 500,1000,2000",
    )
    done = patternbench("run", "fanout", "--engine", "loadgen", "--load-model", "closed-loop")
    assert done.returncode == 2
    assert "loadgen is open-loop only" in done.stderr
