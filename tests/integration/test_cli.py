"""The `patternbench` command as a user types it: exit codes, one-line errors, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.launch.supervisor import port_in_use
from tests.integration.conftest import REPO, shared_machine

pytestmark = pytest.mark.integration


def ctrl_c_as_at_a_terminal() -> None:
    """In the child, before it runs: SIGINT's default action, as a terminal's foreground job has.

    A test suite started in the background by a shell without job control (``make test &``)
    inherits SIGINT ignored, and so would the harness, which keeps an ignored SIGINT ignored (as
    ``nohup`` asks): these tests are about Ctrl-C, so they give the harness a terminal's."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def broken_root(tmp_path: Path, toml: str, *, vectors: bool = True) -> Path:
    (tmp_path / "bench").mkdir()
    folder = tmp_path / "systems" / "fanout"
    folder.mkdir(parents=True)
    (folder / "system.toml").write_text(toml)
    if vectors:
        (folder / "vectors.json").write_text((REPO / "systems/fanout/vectors.json").read_text())
    return tmp_path


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of stderr a refusal is; never a traceback."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


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
        "patternbench: no pattern 'nope' (known: db, edge, fanout, inference, rpc, workerpool)",
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
        preexec_fn=ctrl_c_as_at_a_terminal,
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
    assert (done.returncode, one_line(done)) == (
        2,
        "patternbench run: argument --rates: expected positive rates like 500,1000,2000, not "
        "'100,nope' (see patternbench run --help)",
    )
    done = patternbench("run", "fanout", "--param", "rates=100,nope")
    assert (done.returncode, one_line(done)) == (
        2,
        "patternbench: --param rates=100,nope: expected rates like 500,1000,2000",
    )
    done = patternbench("run", "fanout", "--engine", "loadgen", "--load-model", "closed-loop")
    assert done.returncode == 2
    assert "loadgen is open-loop only" in done.stderr


MISSING_CPU = str(max(os.sched_getaffinity(0)) + 64)


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["run", "fanout", "--slo", "garbage"], "patternbench run: argument --slo: SLO clause"),
        (["run", "fanout", "--slo", "p99<=abc"], "patternbench run: argument --slo: SLO clause"),
        (["run", "fanout", "--rates", "100,,200"], "patternbench run: argument --rates: "),
        (["run", "fanout", "--rate", "nan"], "patternbench run: argument --rate: "),
        (["run", "fanout", "--rate", "inf"], "patternbench run: argument --rate: "),
        (["run", "fanout", "--trials", "0"], "patternbench run: argument --trials: "),
        (["run", "fanout", "--port-offset", "99999"], "patternbench run: argument --port-offset"),
        (["run", "fanout", "--cpus-system", MISSING_CPU], "patternbench run: argument --cpus-sys"),
        (["run", "fanout", "--cpus-loadgen", MISSING_CPU], "patternbench run: argument --cpus-lo"),
        (["run", "fanout", "--param", "rate=nan"], "patternbench: --param rate=nan: must be a "),
        (["run", "fanout", "--param", "rate=inf"], "patternbench: --param rate=inf: must be a "),
        (["run", "fanout", "--param", "slo=garbage"], "patternbench: --param slo=garbage: SLO "),
        (["run", "fanout", "--port-offset", "60000"], "patternbench: --port-offset 60000: "),
        (["load", "https://127.0.0.1:1/"], "patternbench load: argument url: https://127.0.0.1"),
        (["load", "http://127.0.0.1:1/", "--rate", "nan"], "patternbench load: argument --rate"),
        (["load", "http://127.0.0.1:1/", "--rate", "inf"], "patternbench load: argument --rate"),
        (["load", "http://127.0.0.1:1/", "--cpus", MISSING_CPU], "patternbench load: argument"),
        (["load", "http://127.0.0.1:1/", "--duration", "0"], "patternbench load: argument --dur"),
        (["load", "http://127.0.0.1:1/", "--users", "-2"], "patternbench load: argument --users"),
        (["load", "http://127.0.0.1:1/", "--max-in-flight", "0"], "patternbench load: argument"),
        (["load", "http://127.0.0.1:1/", "--json", "/no/such/dir/out.json"],
         "patternbench load: argument --json: no such folder: /no/such/dir"),
        (["load", "http://127.0.0.1:1/", "--engine", "wrk"], "patternbench: --engine wrk: no su"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: list[str], starts: str) -> None:
    done = patternbench(*args)
    assert done.returncode == 2, done.stderr
    assert one_line(done).startswith(starts)
    assert not Path("/no/such").exists()


@pytest.mark.parametrize("slo", ["garbage", "p99<=abc"])
def test_a_bad_slo_in_a_system_toml_names_file_and_field(tmp_path: Path, slo: str) -> None:
    text = (REPO / "systems" / "fanout" / "system.toml").read_text()
    root = broken_root(tmp_path, re.sub(r'^slo = "[^"]*"', f'slo = "{slo}"', text, flags=re.M))
    for args in (("list",), ("run", "fanout")):
        done = patternbench(*args, root=root)
        assert done.returncode == 2
        assert one_line(done).startswith(
            f"patternbench: systems/fanout/system.toml: params: slo={slo}: SLO clause"
        )


def test_a_missing_vectors_file_is_refused_when_the_catalog_is_read(tmp_path: Path) -> None:
    root = broken_root(tmp_path, (REPO / "systems/fanout/system.toml").read_text(), vectors=False)
    for args in (("list",), ("run", "fanout")):
        done = patternbench(*args, root=root)
        assert (done.returncode, one_line(done)) == (
            2,
            "patternbench: systems/fanout/system.toml: vectors: no such file "
            "systems/fanout/vectors.json",
        )


def load_in(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`patternbench load` with its own temporary folder, to see what it leaves there."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "bench", "load", *args],
        cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_load_of_an_unreachable_target_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = load_in(tmp_path, f"http://127.0.0.1:{port}/", "--json", str(tmp_path / "out.json"))
    assert (done.returncode, one_line(done)) == (
        1,
        f"patternbench: http://127.0.0.1:{port}/: cannot connect to 127.0.0.1:{port}: "
        "Connection refused",
    )
    assert done.stdout == ""
    assert not (tmp_path / "out.json").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_load_leaves_no_temporary_folder(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # listens, never answers
        port = server.getsockname()[1]
        done = load_in(tmp_path, f"grpc://127.0.0.1:{port}", "--engine", "locust")
    assert (done.returncode, one_line(done)) == (
        2,
        "patternbench: the locust engine loads http:// URLs (use --engine loadgen for gRPC)",
    )
    assert list((tmp_path / "tmp").iterdir()) == []


def _entry_points() -> list[list[str]]:
    script = Path(sys.executable).parent / "patternbench"
    return [[sys.executable, "-m", "bench"], *([[str(script)]] if script.exists() else [])]


@shared_machine
@pytest.mark.parametrize("entry", _entry_points(), ids=lambda e: Path(e[-1]).name)
@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 1.0])
def test_ctrl_c_at_any_early_moment_is_one_line_and_130(
    tmp_path: Path, port_offset: int, entry: list[str], delay: float
) -> None:
    """During the imports, the catalog, the build: one line, exit 130, never a traceback. (Before
    Python itself is up, some 20 ms, the signal's default action ends the process: no line.)"""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # Python's own start-up, here
    startup = time.monotonic() - start
    proc = subprocess.Popen(
        [*entry, "run", "fanout", "--impl", "go", "--runs-dir", str(tmp_path / "runs"),
         "--port-offset", str(port_offset), "--param", "duration_s=30"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_as_at_a_terminal,
    )  # fmt: skip
    harness = psutil.Process(proc.pid)
    time.sleep(max(delay, 2 * startup))
    started = set(harness.children(recursive=True)) if proc.poll() is None else set()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    said = [line for line in stderr.splitlines() if line.startswith("patternbench")]
    assert said == [stderr.strip().splitlines()[-1]], stderr  # progress lines aside
    assert said[0].startswith("patternbench: interrupted")
    _, alive = psutil.wait_procs(list(started), timeout=10)
    assert alive == []
