"""The Python side of the pool study: the pattern's pyperf script, run pinned, one suite per
implementation.

The script is a pyperf runner script that also answers the pool study's options (the pattern's
system.toml names it, and its docstring says how to run it alone):

- `SCRIPT *args *impl.args --workers W --kernel K --rounds R --size S --tasks T --name NAME`
  plus pyperf's own options: one benchmark named NAME, whose runs carry `measured_task_ms`
  metadata (the kernel's time, measured in the worker process);
- `SCRIPT --calibrate --kernel K --size S`: prints `{"ns_per_round": [...]}` measured where it
  runs.

Every configuration of an implementation is appended (`--append`) to one pyperf suite,
`<workdir>/<implementation>.json`, with benchmarks named by configuration (`spin-10ms-w2`), so
`python -m pyperf compare_to ONE.json OTHER.json` compares two implementations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pyperf  # type: ignore[import-untyped]

from bench.studies.pinned import CommandError, Pinned
from bench.studies.pools_data import FreeThreaded
from bench.studies.pools_plan import Config, PoolImplementation, PoolSpec, Variant

#: Interpreters looked for, in order, when PATTERNBENCH_FREE_THREADED_PYTHON is not set.
FREE_THREADED_NAMES: Final = ("python3.14t", "python3.13t", "python3t")
FREE_THREADED_ENV: Final = "PATTERNBENCH_FREE_THREADED_PYTHON"
#: pyperf for the free-threaded interpreter's own virtual environment (pure Python).
PYPERF_REQUIREMENT: Final = "pyperf==2.10.0"


def _env(impl: PoolImplementation | None) -> dict[str, str]:
    return {"PYTHON_GIL": "0"} if impl is not None and impl.free_threaded else {}


def calibrate(
    pinned: Pinned, spec: PoolSpec, python: str, variant: Variant, *, free_threaded: bool = False
) -> list[float]:
    """Nanoseconds per round of one kernel, one figure per probe, measured by the script where
    the tasks will run."""
    assert spec.pyperf is not None
    command = [python, str(pinned.root / spec.pyperf.script), *spec.pyperf.args, "--calibrate",
               "--kernel", variant.kernel, "--size", str(variant.size)]  # fmt: skip
    out = pinned.run(command, pinned.root, 120, {"PYTHON_GIL": "0"} if free_threaded else None)
    try:
        values = [float(v) for v in json.loads(out.strip().splitlines()[-1])["ns_per_round"]]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise CommandError(f"--calibrate printed no ns_per_round: {e}") from None
    if not values or min(values) <= 0:
        raise CommandError(f"--calibrate printed no usable figure: {values}")
    return values


def suite_path(workdir: Path, impl: PoolImplementation) -> Path:
    return workdir / f"{impl.name}.json"


def run_config(
    pinned: Pinned,
    spec: PoolSpec,
    impl: PoolImplementation,
    config: Config,
    python: str,
    suite: Path,
) -> tuple[list[float], float | None]:
    """Seconds per batch of every value pyperf measured for one configuration, and the median
    task time its worker processes measured; the benchmark is appended to `suite`."""
    assert spec.pyperf is not None
    command = [
        python, str(pinned.root / spec.pyperf.script), *spec.pyperf.args, *impl.args,
        "--workers", str(config.workers), "--kernel", config.variant.kernel,
        "--rounds", str(config.rounds), "--size", str(config.variant.size),
        "--tasks", str(config.tasks), "--name", config.name,
        "--processes", str(spec.pyperf_processes), "--values", str(spec.pyperf_values),
        "--warmups", "1", "--loops", "1", "--quiet", "--append", str(suite),
    ]  # fmt: skip
    expected_s = spec.pyperf_processes * (spec.pyperf_values + 1) * spec.batch_s * 4
    pinned.run(command, pinned.root, 60 + 10 * expected_s, _env(impl))
    return read_suite(suite, config.name)


def read_suite(path: Path, name: str) -> tuple[list[float], float | None]:
    """The values of one benchmark of a pyperf suite, and its runs' median `measured_task_ms`."""
    try:
        bench = pyperf.BenchmarkSuite.load(str(path)).get_benchmark(name)
        values = [float(v) for v in bench.get_values()]
        measured = [
            float(r.get_metadata()["measured_task_ms"])
            for r in bench.get_runs()
            if "measured_task_ms" in r.get_metadata()
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(f"{path}: no benchmark {name!r} to read: {e}") from None
    if not values:
        raise CommandError(f"{path}: benchmark {name!r} has no values")
    return values, (sorted(measured)[len(measured) // 2] if measured else None)


def find_free_threaded(path: str | None = None) -> FreeThreaded:
    """A CPython built without the GIL, from $PATTERNBENCH_FREE_THREADED_PYTHON or on PATH."""
    explicit = os.environ.get(FREE_THREADED_ENV)
    if explicit:
        candidates = [explicit]
        where = f"${FREE_THREADED_ENV}={explicit}"
    else:
        candidates = [found for n in FREE_THREADED_NAMES if (found := shutil.which(n, path=path))]
        where = f"{', '.join(FREE_THREADED_NAMES)} on PATH"
    notes: list[str] = []
    probe = (
        "import sys, sysconfig; "
        "print(sysconfig.get_config_var('Py_GIL_DISABLED') or 0, sys.version.split()[0])"
    )
    for exe in candidates:
        try:
            done = subprocess.run(
                [exe, "-c", probe], capture_output=True, text=True, timeout=30, check=True
            )
            disabled, version = done.stdout.split()
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            notes.append(f"{exe} does not run ({e})")
            continue
        if disabled == "1":
            return FreeThreaded(
                available=True, interpreter=exe, version=version, note=f"found as {where}"
            )
        notes.append(f"{exe} (Python {version}) is built with the GIL")
    return FreeThreaded(
        available=False,
        note=f"not available: looked for {where}"
        + (f"; {'; '.join(notes)}" if notes else ", none found"),
    )


def free_threaded_env(pinned: Pinned, interpreter: str) -> str:
    """A virtual environment of the free-threaded interpreter with pyperf; its python."""
    venv = pinned.root / ".venv-ft"
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if not python.exists():
        pinned.run([str(uv), "venv", "-q", "--python", interpreter, str(venv)], pinned.root, 300)
    pinned.run([str(uv), "pip", "install", "-q", "--python", str(python), PYPERF_REQUIREMENT],
               pinned.root, 600)  # fmt: skip
    return str(python)
