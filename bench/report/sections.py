"""What the report takes from a study: its reading and its sections, handed in by bench/cli.py.

The report knows no study; each study kind (bench/studies/) makes its `ReportSection` from the
stored result, and the report places it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class ReportSection:
    """A study's part of the report."""

    reading: list[str] = field(default_factory=list)
    """Bullets for the report's top "Reading": each a finding with its figures."""
    lines: list[str] = field(default_factory=list)
    """Markdown sections (`## …`), placed after the service figures; plots go into run_dir."""
