"""The harness stays one that a new pattern plugs into: no pattern's name in bench/, no module past
~400 lines, no grab-bag modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
#: Every pattern folder, the ones still without a system.toml (a pattern being built) too.
PATTERNS = sorted(
    p.name for p in (REPO / "systems").iterdir() if p.is_dir() and (p / "__init__.py").is_file()
)
MAX_LINES = 420


def test_there_are_patterns_to_look_for() -> None:
    assert len(PATTERNS) >= 2


@pytest.mark.parametrize("name", PATTERNS)
def test_no_pattern_name_appears_in_the_harness(name: str) -> None:
    """A pattern brings data and code under systems/; bench/ knows it by none of its names."""
    word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(BENCH.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if word.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("folder", ["bench", "systems"])
def test_no_module_is_over_about_400_lines(folder: str) -> None:
    long = [
        f"{path.relative_to(REPO)}: {count} lines"
        for path in sorted((REPO / folder).rglob("*.py"))
        if "_pb2" not in path.name
        and (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, "\n".join(long)


def test_no_grab_bag_modules() -> None:
    names = {p.stem for p in BENCH.rglob("*.py")}
    assert not names & {"utils", "helpers", "common", "misc"}


def test_the_package_folders_follow_the_flow() -> None:
    folders = {p.name for p in BENCH.iterdir() if (p / "__init__.py").is_file()}
    assert folders == {"launch", "engines", "collect", "stats", "studies", "report", "gate", "soak"}


#: Libraries that take up to seconds to import: the command line imports them where they are used.
HEAVY = ("scipy", "pandas", "matplotlib", "numpy", "torch", "grpc", "ruptures", "google.protobuf")


@pytest.mark.parametrize(
    "code",
    [
        "import bench.cli; bench.cli.parser()",  # --help and every bad flag: the parser alone
        "import bench.cli, bench.commands; bench.cli.parts()",  # `list`: commands, parts, catalog
    ],
)
def test_the_command_line_starts_without_the_heavy_libraries(code: str) -> None:
    """`patternbench --help`, a bad flag and `list` answer at once, not after seconds of imports
    (and a Ctrl-C then does not land inside scipy)."""
    loaded = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(' '.join(sorted(sys.modules)))"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert [m for m in loaded if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))] == []
