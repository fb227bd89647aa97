"""The in-process pool study: the pools timed without a network, by pyperf and `go test -bench`.

A pattern with an `[inprocess]` table in its system.toml (worker pools) gets, besides its service
sweep, two measurements of its pools run inside one process on batches of identical tasks:

- **scaling**: throughput against the number of workers (1 … the CPUs the study may use) for a
  task of `inprocess_scaling_ms`, for each kernel variant: `spin` (holds the GIL), `hash` over a
  large block (releases it) and over a small one (holds it);
- **crossover**: `spin` tasks from `inprocess_task_ms` (0.1 … 100 ms), so the report shows where
  the per-task overhead of a pool (pickling, IPC, hand-off) eats the gain of its workers.

Task sizes are times, not round counts: the kernels are calibrated first, per language (a Go
spin round is about 100 times cheaper than a Python one), so "a 10 ms task" is 10 ms of one worker's
time in every implementation. Each configuration is one pyperf run (its own worker processes,
`-p` processes times `-n` values) or one case of `go test -bench … -count n`; every timed batch is
kept and the throughput is their median with a bootstrap interval (bench/confidence.py).

Everything runs pinned (taskset) to the CPUs the study uses, with nothing else of the harness
running. A configuration that fails is recorded with its error and the study goes on.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from bench.catalog import InProcessSpec
from bench.models import Estimate, FreeThreaded, InProcessMeasurement, InProcessStudy, ParamValue
from bench.stats.confidence import median_ci

#: Interpreters looked for, in order, when PATTERNBENCH_FREE_THREADED_PYTHON is not set.
FREE_THREADED_NAMES: Final = ("python3.14t", "python3.13t", "python3t")
FREE_THREADED_ENV: Final = "PATTERNBENCH_FREE_THREADED_PYTHON"
#: pyperf for the free-threaded interpreter's own virtual environment (pure Python).
PYPERF_REQUIREMENT: Final = "pyperf==2.10.0"

_GO_NAME = re.compile(r"^(Benchmark\w+)((?:/[\w.]+=[\w.]+)*)(?:-(\d+))?$")


class Variant(NamedTuple):
    """A kernel and its block size (0 for spin)."""

    kernel: str
    size: int

    @property
    def label(self) -> str:
        if self.kernel == "spin":
            return "spin"
        return f"hash {_bytes(self.size)}"


def _bytes(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


class Config(NamedTuple):
    """One configuration to time: an implementation, its pool size and its task."""

    implementation: str
    workers: int
    variant: Variant
    rounds: int
    tasks: int
    task_ms: float


@dataclass(frozen=True, kw_only=True)
class StudyParams:
    """The study's knobs, from the pattern's `inprocess*` parameters."""

    scaling_ms: float
    task_ms: list[float]
    hash_sizes: list[int]
    batch_s: float
    pyperf_processes: int
    pyperf_values: int
    go_count: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> StudyParams:
        def floats(key: str) -> list[float]:
            return [float(x) for x in str(params[key]).split(",") if x.strip()]

        return cls(
            scaling_ms=float(params["inprocess_scaling_ms"]),
            task_ms=floats("inprocess_task_ms"),
            hash_sizes=[int(x) for x in floats("inprocess_hash_sizes")],
            batch_s=float(params["inprocess_batch_s"]),
            pyperf_processes=int(params["inprocess_processes"]),
            pyperf_values=int(params["inprocess_values"]),
            go_count=int(params["inprocess_go_count"]),
        )


def python_impl(pool: str) -> str:
    return f"python-{pool}"


FREE_THREADED_IMPL: Final = "python-threads-ft"


# ---- calibration ----------------------------------------------------------------------------


def calibrate_python(variant: Variant, *, target_s: float = 0.02, repeats: int = 5) -> float:
    """Nanoseconds per round of a Python kernel, timed here (the study's interpreter)."""
    from systems.workerpool.kernels import hash_chain, spin

    def run(rounds: int) -> float:
        start = time.perf_counter()
        if variant.kernel == "spin":
            spin(1, rounds)
        else:
            hash_chain(1, rounds, variant.size)
        return time.perf_counter() - start

    rounds = 64
    while (elapsed := run(rounds)) < target_s / 4:  # grow to a measurable probe
        rounds *= 4
    rounds = max(1, int(rounds * target_s / max(elapsed, 1e-9)))
    return 1e9 * statistics.median(run(rounds) for _ in range(repeats)) / rounds


def rounds_for(task_ms: float, ns_per_round: float) -> int:
    return max(1, round(task_ms * 1e6 / ns_per_round))


def tasks_for(task_ms: float, batch_s: float, max_workers: int) -> int:
    """Tasks per batch: about batch_s of one worker's time, at least 4 per worker, and a
    multiple of max_workers so that no worker count leaves a worker idle at the end."""
    tasks = max(4 * max_workers, math.ceil(batch_s * 1000 / task_ms))
    return math.ceil(tasks / max_workers) * max_workers


# ---- the plan -------------------------------------------------------------------------------


def plan(
    params: StudyParams,
    spec: InProcessSpec,
    workers: Sequence[int],
    ns_per_round: Mapping[str, float],
    *,
    free_threaded: bool,
) -> list[Config]:
    """Every configuration of both studies, without duplicates, in a stable order."""
    variants = [Variant("spin", 0), *(Variant("hash", size) for size in params.hash_sizes)]
    most = max(workers)
    pools = list(spec.pools)
    impls: list[tuple[str, str, list[int]]] = [  # name, language, worker counts
        (python_impl(pool), "python", [1] if pool == "sync" else list(workers)) for pool in pools
    ]
    if free_threaded:
        impls.append((FREE_THREADED_IMPL, "python", list(workers)))
    impls.append(("go", "go", list(workers)))

    configs: dict[tuple[str, int, Variant, float], Config] = {}

    def add(name: str, language: str, w: int, variant: Variant, task_ms: float) -> None:
        ns = ns_per_round[calibration_key(language, variant)]
        config = Config(
            implementation=name,
            workers=w,
            variant=variant,
            rounds=rounds_for(task_ms, ns),
            tasks=tasks_for(task_ms, params.batch_s, most),
            task_ms=task_ms,
        )
        configs.setdefault((name, w, variant, task_ms), config)

    for variant in variants:  # scaling
        for name, language, counts in impls:
            for w in counts:
                add(name, language, w, variant, params.scaling_ms)
    for task_ms in params.task_ms:  # crossover: spin; threads only at full size (the GIL)
        for name, language, counts in impls:
            crossover = [counts[-1]] if "threads" in name else sorted({counts[0], counts[-1]})
            for w in crossover:
                add(name, language, w, variants[0], task_ms)
    return list(configs.values())


def calibration_key(language: str, variant: Variant) -> str:
    return f"{language}/{variant.kernel}" + (f"/{variant.size}" if variant.kernel == "hash" else "")


# ---- Go -------------------------------------------------------------------------------------


class GoBenchLine(NamedTuple):
    name: str
    fields: dict[str, str]
    procs: int | None
    iterations: int
    ns_per_op: float
    metrics: dict[str, float]


class GoBenchError(Exception):
    """`go test -bench` output that cannot be read."""


def parse_go_bench(text: str) -> list[GoBenchLine]:
    """The result lines of `go test -bench` output (the Go benchmark data format).

    A line is `Name[/k=v…][-procs]  N  value unit  [value unit …]`; configuration lines
    (`goos: linux`), `PASS` and `ok …` are skipped. Sub-benchmark names in `k=v` form become
    `fields`.
    """
    lines: list[GoBenchLine] = []
    for number, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts or not parts[0].startswith("Benchmark") or len(parts) < 2:
            continue
        match = _GO_NAME.match(parts[0])
        if match is None:
            raise GoBenchError(f"line {number}: benchmark name {parts[0]!r} is not Name/k=v…")
        if len(parts) % 2 or not parts[1].isdigit():
            raise GoBenchError(f"line {number}: expected `name N value unit …`: {raw.strip()!r}")
        metrics: dict[str, float] = {}
        for value, unit in zip(parts[2::2], parts[3::2], strict=True):
            try:
                metrics[unit] = float(value)
            except ValueError:
                raise GoBenchError(f"line {number}: {value!r} ({unit}) is not a number") from None
        if "ns/op" not in metrics:
            raise GoBenchError(f"line {number}: no ns/op")
        fields = dict(p.split("=", 1) for p in match.group(2).split("/") if p)
        lines.append(
            GoBenchLine(
                name=match.group(1),
                fields=fields,
                procs=int(match.group(3)) if match.group(3) else None,
                iterations=int(parts[1]),
                ns_per_op=metrics["ns/op"],
                metrics=metrics,
            )
        )
    return lines


def go_measurements(
    lines: Iterable[GoBenchLine], configs: Iterable[Config]
) -> list[InProcessMeasurement]:
    """Group BenchmarkPool lines by configuration: one sample (seconds per batch) per line."""
    samples: dict[tuple[str, int, int, int, int], list[float]] = {}
    for line in lines:
        try:
            key = (
                line.fields["kernel"],
                int(line.fields["rounds"]),
                int(line.fields["size"]),
                int(line.fields["tasks"]),
                int(line.fields["workers"]),
            )
        except (KeyError, ValueError) as e:
            raise GoBenchError(f"{line.name}: missing or bad field {e}") from None
        samples.setdefault(key, []).append(line.ns_per_op / 1e9)
    found: list[InProcessMeasurement] = []
    for config in configs:
        v = config.variant
        key = (v.kernel, config.rounds, v.size, config.tasks, config.workers)
        if key in samples:
            found.append(measurement(config, "go-bench", samples[key]))
    return found


def measurement(config: Config, source: str, batch_seconds: list[float]) -> InProcessMeasurement:
    e = median_ci([config.tasks / s for s in batch_seconds])
    return InProcessMeasurement(
        implementation=config.implementation,
        source="pyperf" if source == "pyperf" else "go-bench",
        kernel="spin" if config.variant.kernel == "spin" else "hash",
        rounds=config.rounds,
        size=config.variant.size,
        workers=config.workers,
        tasks=config.tasks,
        task_ms=config.task_ms,
        batch_seconds=batch_seconds,
        throughput=Estimate(median=e.median, low=e.low, high=e.high, n=e.n),
    )


# ---- running --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Machine:
    """Where and with what the study runs."""

    root: Path
    spec: InProcessSpec
    cpus: list[int]
    python: str = sys.executable
    workdir: Path

    def pinned(self, command: list[str]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, self.cpus)), *command]


def _run(
    command: list[str], cwd: Path, timeout_s: float, env: Mapping[str, str] | None = None
) -> str:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=None if env is None else {**os.environ, **env},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{command[0]}: no answer in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"exit {done.returncode}: {' / '.join(tail)}")
    return done.stdout


def go_command(
    machine: Machine, cases: Sequence[Config], workers: Sequence[int], count: int
) -> list[str]:
    case_text = ",".join(
        sorted({f"{c.variant.kernel}:{c.rounds}:{c.variant.size}:{c.tasks}" for c in cases})
    )
    return [
        "go", "test", "-run", "^$", "-bench", f"^{machine.spec.go_benchmark}$",
        "-benchtime", "1x", "-count", str(count), "-cpu", str(len(machine.cpus)),
        machine.spec.go_package, "-args",
        f"-workerpool.cases={case_text}",
        f"-workerpool.workers={','.join(map(str, sorted(set(workers))))}",
    ]  # fmt: skip


def calibrate_go(
    machine: Machine, variants: Sequence[Variant], python_ns: Mapping[str, float]
) -> dict[str, float]:
    """Nanoseconds per round of the Go kernels, from one probe of about 20 ms each on one worker.

    The probe's rounds start from the Python figure: SHA-256 runs at about the same speed in
    both (compiled code either way), a Go spin round is about 100 times cheaper.
    """
    probe = []
    for v in variants:
        guess = python_ns[calibration_key("python", v)] / (100 if v.kernel == "spin" else 1)
        probe.append(Config("go", 1, v, rounds_for(20.0, guess), 1, 20.0))
    out = _run(
        machine.pinned(go_command(machine, probe, [1], 3)), machine.root / machine.spec.go_dir, 300
    )
    found: dict[str, float] = {}
    for line in parse_go_bench(out):
        variant = Variant(line.fields["kernel"], int(line.fields["size"]))
        per_round = line.ns_per_op / int(line.fields["rounds"])
        key = calibration_key("go", variant)
        found[key] = min(found.get(key, math.inf), per_round)
    missing = [calibration_key("go", v) for v in variants if calibration_key("go", v) not in found]
    if missing:
        raise RuntimeError(f"go calibration: no figure for {', '.join(missing)}")
    return found


def run_pyperf(machine: Machine, config: Config, params: StudyParams, python: str) -> list[float]:
    """Seconds per batch of every value pyperf measured for one Python configuration."""
    kind = config.implementation.removeprefix("python-").removesuffix("-ft")
    fd, out_name = tempfile.mkstemp(dir=machine.workdir, prefix="pyperf-", suffix=".json")
    os.close(fd)
    out = Path(out_name)
    out.unlink()  # pyperf refuses to overwrite
    command = machine.pinned(
        [
            python, str(machine.root / machine.spec.pyperf_script),
            "--kind", kind, "--workers", str(config.workers),
            "--kernel", config.variant.kernel, "--rounds", str(config.rounds),
            "--size", str(config.variant.size), "--tasks", str(config.tasks),
            "--processes", str(params.pyperf_processes), "--values", str(params.pyperf_values),
            "--warmups", "1", "--loops", "1", "--quiet", "--output", str(out),
        ]
    )  # fmt: skip
    expected_s = params.pyperf_processes * (params.pyperf_values + 1) * params.batch_s * 4
    env = {"PYTHONPATH": str(machine.root)}
    if config.implementation == FREE_THREADED_IMPL:
        env["PYTHON_GIL"] = "0"
    _run(command, machine.root, timeout_s=60 + 10 * expected_s, env=env)
    return pyperf_batch_seconds(out)


def pyperf_batch_seconds(path: Path) -> list[float]:
    """The values of the one benchmark in a pyperf JSON file (seconds per loop: one batch)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        values = [v for run in data["benchmarks"][0]["runs"] for v in run.get("values", [])]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise RuntimeError(f"{path}: not a pyperf result with one benchmark: {e}") from None
    if not values:
        raise RuntimeError(f"{path}: the benchmark has no values")
    return [float(v) for v in values]


# ---- free-threaded CPython ------------------------------------------------------------------


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


def free_threaded_env(root: Path, interpreter: str) -> str:
    """A virtual environment of the free-threaded interpreter with pyperf; its python."""
    venv = root / ".venv-ft"
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if not python.exists():
        _run([str(uv), "venv", "-q", "--python", interpreter, str(venv)], root, 300)
    _run([str(uv), "pip", "install", "-q", "--python", str(python), PYPERF_REQUIREMENT], root, 600)
    return str(python)


# ---- the study ------------------------------------------------------------------------------


def run_study(
    machine: Machine,
    params: StudyParams,
    workers: Sequence[int],
    say: Callable[[str], None] = lambda _: None,
) -> InProcessStudy:
    """Calibrate, plan and time every configuration; failures are kept in `errors`."""
    machine.workdir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    variants = [Variant("spin", 0), *(Variant("hash", size) for size in params.hash_sizes)]
    ft = find_free_threaded()
    ft_python: str | None = None
    if ft.available and ft.interpreter:
        try:
            ft_python = free_threaded_env(machine.root, ft.interpreter)
        except RuntimeError as e:
            ft = ft.model_copy(update={"available": False, "note": f"{ft.note}; unusable: {e}"})
    say("calibrating the kernels")
    ns: dict[str, float] = {calibration_key("python", v): calibrate_python(v) for v in variants}
    ns.update(calibrate_go(machine, variants, ns))
    configs = plan(params, machine.spec, workers, ns, free_threaded=ft_python is not None)
    measurements: list[InProcessMeasurement] = []
    python_configs = [c for c in configs if c.implementation != "go"]
    for i, config in enumerate(python_configs, 1):
        say(f"pyperf {i}/{len(python_configs)}: {describe(config)}")
        python = ft_python if config.implementation == FREE_THREADED_IMPL else machine.python
        try:
            values = run_pyperf(machine, config, params, python or machine.python)
        except RuntimeError as e:
            errors.append(f"{describe(config)}: {e}")
            continue
        measurements.append(measurement(config, "pyperf", values))
    go_configs = [c for c in configs if c.implementation == "go"]
    say(f"go test -bench: {len(go_configs)} configurations, {params.go_count} samples each")
    try:
        out = _run(
            machine.pinned(go_command(machine, go_configs, workers, params.go_count)),
            machine.root / machine.spec.go_dir,
            timeout_s=120 + 20 * params.go_count * len(go_configs) * params.batch_s,
        )
        measurements += go_measurements(parse_go_bench(out), go_configs)
    except (RuntimeError, GoBenchError) as e:
        errors.append(f"go test -bench: {e}")
    return InProcessStudy(
        cpus=machine.cpus,
        ns_per_round=ns,
        scaling_task_ms=params.scaling_ms,
        task_ms=params.task_ms,
        free_threaded=ft,
        measurements=measurements,
        errors=errors,
    )


def describe(config: Config) -> str:
    return (
        f"{config.implementation} x{config.workers}, {config.variant.label}, "
        f"{config.task_ms:g} ms ({config.rounds:,} rounds), {config.tasks} tasks"
    )
