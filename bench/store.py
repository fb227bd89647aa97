"""Result files on disk: written atomically, read back (older versions upgraded), listed for
pandas.

A malformed file is a ResultFileError whose message is one line naming the file and the field.
Files of older schema versions are brought to the current one by `upgrade`, the one place that
knows the format's history (bench/models.py lists it).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from bench.models import SCHEMA_VERSION, RunResult, first_error

if TYPE_CHECKING:
    import pandas as pd

#: Versions this reader understands: older ones are upgraded on load.
READABLE_VERSIONS: Final = (2, 3, SCHEMA_VERSION)


class ResultFileError(Exception):
    """A result file that cannot be read: the message is one line naming the file and the field."""


def _new_file_mode() -> int:
    """What open() gives a new file: 0666 less the umask (mkstemp's own 0600 is for secrets)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # no /proc: read it the only portable way, by setting it
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a crash leaves no half file.

    The file gets the usual mode (0666 less the umask), so that a CI artifact step or a web
    server serving results/ can read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _new_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_run(result: RunResult, run_dir: Path) -> Path:
    path = run_dir / "run.json"
    write_atomic(path, result.model_dump_json(indent=2) + "\n")
    return path


def load_run(path: Path) -> RunResult:
    """Read one run.json; any problem is a ResultFileError naming the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ResultFileError(f"{path}: cannot read: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultFileError(f"{path}: not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise ResultFileError(f"{path}: not a patternbench result (top level is not an object)")
    version = raw.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ResultFileError(
            f"{path}: schema_version: {version!r} is not supported (this patternbench reads "
            f"{readable})"
        )
    try:
        return RunResult.model_validate(upgrade(raw))
    except ValidationError as e:
        raise ResultFileError(f"{path}: {first_error(e)}") from e


# ---- the format's history -------------------------------------------------------------------


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """A result file's JSON brought to the current schema, one version step after another.

    Works on the raw JSON before validation and reads it defensively: a field it cannot read is
    left as it is, and validation then names it.
    """
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raw = copy.deepcopy(raw)  # the steps below change nested values in place
    if version == 2:  # 2 → 3: there was no in-process study
        raw = {**raw, "schema_version": 3, "inprocess": None}
        version = 3
    if version == 3:  # 3 → 4: see bench/models.py
        study = _pools_study_from_3(raw)
        raw = {key: value for key, value in raw.items() if key != "inprocess"}
        raw["schema_version"] = 4
        raw["studies"] = [study] if study is not None else []
        scenario = raw.get("scenario")
        if isinstance(scenario, dict) and "locustfile" in scenario:
            rest = {k: v for k, v in scenario.items() if k != "locustfile"}
            raw["scenario"] = {**rest, "engine_spec": {"locustfile": scenario["locustfile"]}}
        for point in _points(raw):
            _add_p95(point)
    return raw


def _dicts(value: object) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _points(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for impl in _dicts(raw.get("implementations")):
        yield from _dicts(impl.get("points"))


def _add_p95(point: dict[str, Any]) -> None:
    """p95 of each trial from its stored histograms (slip kept none: None), and its summary."""
    from bench.stats.confidence import median_ci  # old files only: scipy is slow to import
    from bench.stats.percentiles import decode, value_ms

    def p95(encoded: object) -> float | None:
        try:
            return value_ms(decode(str(encoded)), 95.0) if encoded else None
        except (ValueError, TypeError, ArithmeticError):  # not a histogram: say nothing
            return None

    valid: list[float] = []
    for trial in _dicts(point.get("trials")):
        load = trial.get("load")
        if not isinstance(load, dict):
            continue
        for key, histogram in (("latency_ms", "histogram"),
                               ("uncorrected_ms", "uncorrected_histogram"),
                               ("slip_ms", None)):  # fmt: skip
            if isinstance(load.get(key), dict):
                load[key] = {**load[key], "p95": p95(load.get(histogram)) if histogram else None}
        figure = load["latency_ms"].get("p95") if isinstance(load.get("latency_ms"), dict) else None
        if trial.get("valid") is True and figure is not None:
            valid.append(figure)
    summary = point.get("summary")
    if isinstance(summary, dict) and summary and valid:
        e = median_ci(valid)
        point["summary"] = {**summary, "p95": {"median": e.median, "low": e.low, "high": e.high,
                                               "n": e.n}}  # fmt: skip


#: How schema 3's in-process study told its implementations apart, by name: Python's were named
#: "python-<pool>" ("-ft" for a free-threaded CPython), and their inline baseline was the Python
#: one measured on one worker only; any other was a language's own pool, its own baseline.
_V3_POOL_WORDS = ("threads", "processes")


def _v3_implementations(measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(dict.fromkeys(str(m.get("implementation")) for m in measurements))
    python = [n for n in names if n.startswith("python")]
    one_worker = [n for n in python if all(m.get("workers") == 1 for m in measurements
                                           if m.get("implementation") == n)]  # fmt: skip
    inline = one_worker[0] if one_worker else None
    impls = []
    for name in names:
        words = name.removesuffix("-ft").split("-")
        pool = next((w for w in _V3_POOL_WORDS if w in words), "threads")
        impls.append({
            "name": name,
            "pool": "inline" if name == inline else pool if name in python else "goroutines",
            "language": "python" if name in python else name,
            "baseline": inline if name in python and name != inline else None,
            "free_threaded": name.endswith("-ft"),
        })  # fmt: skip
    return impls


def _size_label(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def _pools_study_from_3(raw: dict[str, Any]) -> dict[str, Any] | None:
    """Schema 3's `inprocess` as a Study of kind "pools", laid out as bench/studies/pools_data
    lays out a new one."""
    old = raw.get("inprocess")
    if not isinstance(old, dict):
        return None
    measurements = list(_dicts(old.get("measurements")))
    series: dict[tuple[Any, ...], dict[str, Any]] = {}
    for m in measurements:
        name, kernel, size, task_ms = (m.get(k) for k in ("implementation", "kernel", "size",
                                                          "task_ms"))  # fmt: skip
        variant = "spin" if kernel == "spin" else f"{kernel} {_size_label(int(size or 0))}"
        s = series.setdefault((name, kernel, size, task_ms), {
            "label": f"{variant}, {task_ms:g} ms",
            "implementation": name,
            "x": {"name": "workers", "unit": "workers"},
            "y": {"name": "throughput", "unit": "tasks/s"},
            "points": [],
            "metadata": {"kernel": kernel, "size": size, "task_ms": task_ms,
                         "rounds": m.get("rounds"), "tasks": m.get("tasks"),
                         "source": m.get("source")},
        })  # fmt: skip
        s["points"].append({
            "x": m.get("workers"),
            "y": m.get("throughput"),
            "metadata": {"batch_seconds": m.get("batch_seconds"), "measured_task_ms": None},
        })  # fmt: skip
    ns = old.get("ns_per_round")
    ns = ns if isinstance(ns, dict) else {}
    params = (
        raw.get("scenario", {}).get("params", {}) if isinstance(raw.get("scenario"), dict) else {}
    )
    metadata: dict[str, Any] = {
        "ns_per_round": ns,
        "cpus": old.get("cpus"),
        "scaling_ms": old.get("scaling_task_ms"),
        "task_ms": old.get("task_ms"),
        "implementations": _v3_implementations(measurements),
        "free_threaded": old.get("free_threaded"),
    }
    if isinstance(params, dict) and params.get("kernel") and params.get("rounds"):
        metadata["service_task"] = {"kernel": params["kernel"], "rounds": params["rounds"]}
    return {
        "kind": "pools",
        "name": "pools",
        "spec": {"scaling_ms": old.get("scaling_task_ms"), "task_ms": old.get("task_ms")},
        "series": list(series.values()),
        "estimates": {
            f"calibration {key}": {"median": v, "low": v, "high": v, "n": 1}
            for key, v in ns.items()
        },
        "errors": old.get("errors", []),
        "metadata": metadata,
    }


# ---- listing --------------------------------------------------------------------------------


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run is named by its folder, its run.json, or its id under runs_dir."""
    candidate = Path(ref)
    for path in (candidate, candidate / "run.json", runs_dir / ref / "run.json"):
        if path.is_file():
            return path
    raise ResultFileError(f"{ref}: no such run (looked for it as a path and under {runs_dir})")


def runs_dataframe(runs_dir: Path) -> pd.DataFrame:
    """One row per (run, implementation, load point) over every stored run, for pandas.

    Latency and throughput columns are the medians over the point's valid trials.
    """
    import pandas as pd

    rows: list[dict[str, object]] = []
    for path in sorted(runs_dir.glob("*/run.json")):
        run = load_run(path)
        for impl in run.implementations:
            base: dict[str, object] = {
                "run_id": run.run_id,
                "created_at": run.created_at,
                "pattern": run.scenario.pattern,
                "profile": run.scenario.profile,
                "engine": run.scenario.engine,
                "load_model": run.scenario.load_model,
                "git_sha": run.environment.git_sha,
                "implementation": impl.name,
                "language": impl.language,
                "status": impl.status,
            }
            if not impl.points:
                rows.append(base)
            for point in impl.points:
                row = {**base, "target_rps": point.target_rps, "valid": point.valid}
                row["trials"] = len(point.trials)
                for key, estimate in point.summary.items():
                    suffix = "" if key.endswith(("_rps", "_rate")) else "_ms"
                    row[f"{key}{suffix}"] = estimate.median
                rows.append(row)
    return pd.DataFrame(rows)
