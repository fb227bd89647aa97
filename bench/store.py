"""Result files on disk: written atomically, read back (older versions upgraded), listed for
pandas.

A malformed file is a ResultFileError whose message is one line naming the file and the field.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import ValidationError

from bench.models import RunResult, first_error

if TYPE_CHECKING:
    import pandas as pd

#: Versions this reader understands; a version-2 file is a version-3 file without `inprocess`.
READABLE_VERSIONS: Final = (2, 3)


class ResultFileError(Exception):
    """A result file that cannot be read: the message is one line naming the file and the field."""


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
        return RunResult.model_validate(raw)
    except ValidationError as e:
        raise ResultFileError(f"{path}: {first_error(e)}") from e


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
