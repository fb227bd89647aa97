"""A restart survived, as the db pattern's fault study runs it (systems/db/restart_check.py):
PostgreSQL gets a fast shutdown and starts again under a steady write load, and every order
answered 201 has its order row and outbox row, and reached the sink, on both implementations."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.studies.fault import passed
from tests.integration.service_process import ROOT

pytestmark = pytest.mark.usefixtures("go_binaries")

TARGETS = tomllib.loads((ROOT / "systems" / "db" / "system.toml").read_text())["studies"][
    "restart"
]["targets"]


def _filled(command: list[str]) -> list[str]:
    """The study's command as the catalog renders it: {{x}} stays a placeholder, {pool_size} 4."""
    return [part.replace("{pool_size}", "4").replace("{{", "{").replace("}}", "}")
            for part in command]  # fmt: skip


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_no_acknowledged_order_is_lost(target: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "systems" / "db" / "restart_check.py"),
            "--name",
            target,
            "--command",
            json.dumps(_filled(TARGETS[target])),
            "--logs",
            str(tmp_path),
            "--rate",
            "60",
            "--duration-s",
            "4",
            "--fault-at-s",
            "1.5",
            "--down-s",
            "0.5",
            "--items",
            "5000",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    measures, checks = found["measures"], found["checks"]
    failed = {k: v for k, v in checks.items() if not passed(v)}
    assert not failed, (failed, measures)
    # The fault was felt: the database went away and the service said so, then served again.
    assert measures["database_down_s"] is not None
    assert measures["database_down_s"] >= 0.4
    assert measures["errors"] > 0, measures
    assert set(measures["error_kinds"]) <= {"503", "timeout"}, measures["error_kinds"]
    assert measures["acknowledged"] + measures["errors"] == measures["requests"]
    assert measures["acknowledged"] > 100
