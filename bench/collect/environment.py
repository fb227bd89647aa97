"""The environment a run happened in, embedded in its result so a number carries its context."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.models import CpuSets, Environment

#: Python distributions whose versions shape the numbers.
PYTHON_LIBRARIES = (
    "aiohttp", "hdrhistogram", "locust", "pandas", "prometheus-client", "psutil", "pydantic",
    "uvloop",
)  # fmt: skip


def _run(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def go_libraries(root: Path) -> dict[str, str]:
    """Direct requirements of the Go module, as `go:path` → version."""
    try:
        text = (root / "go" / "go.mod").read_text(encoding="utf-8")
    except OSError:
        return {}
    found = re.findall(r"^\s*(?:require\s+)?([\w./-]+\.[\w./-]+)\s+(v[\w.+-]+)\s*$", text, re.M)
    return {f"go:{path}": version for path, version in found}


def capture(root: Path, cpusets: CpuSets) -> Environment:
    libraries: dict[str, str] = {}
    for name in PYTHON_LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    libraries.update(go_libraries(root))
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], root)
    return Environment(
        git_sha=_run(["git", "rev-parse", "HEAD"], root),
        git_dirty=bool(status),
        hostname=socket.gethostname(),
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=len(os.sched_getaffinity(0)),
        cpusets=cpusets,
        python=sys.version.split()[0],
        go=_run(["go", "env", "GOVERSION"], root),
        libraries=libraries,
    )
