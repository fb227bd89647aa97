"""The fault study's report section from a stored study (pure logic): measures, checks, verdicts."""

from __future__ import annotations

from bench.models import Study
from bench.studies.fault import FaultSpec, passed, section


def study(targets: dict[str, object], errors: list[str] | None = None) -> Study:
    spec = FaultSpec(script="s.py", title="A restart", targets={"a": ["x"]})
    return Study(kind="fault", name="restart", spec=spec.model_dump(), errors=errors or [],
                 metadata={"targets": targets})  # fmt: skip


def test_a_check_passes_at_zero_or_true() -> None:
    assert passed(0)
    assert passed(True)
    assert passed(0.0)
    assert not passed(1)
    assert not passed(False)
    assert not passed(None)
    assert not passed("0")


def test_every_target_has_its_measures_and_checks() -> None:
    ok = {"fault": "stopped", "measures": {"acknowledged": 10, "outage_s": 0.5,
                                           "error_kinds": {"503": 3}},
          "checks": {"lost_orders": 0, "never_restarted": True}}  # fmt: skip
    bad = {"fault": "stopped", "measures": {"acknowledged": 9},
           "checks": {"lost_orders": 2, "never_restarted": True}}  # fmt: skip
    out = section(study({"py": ok, "go": bad}))
    text = "\n".join(out.lines)
    assert "## A restart" in text
    assert "The fault: stopped." in text
    assert "| | py | go |" in text
    assert "| outage s | 0.50 | — |" in text
    assert "| error kinds | 503: 3 | — |" in text
    assert "| **lost orders** | 0 ✓ | 2 **✗** |" in text
    assert out.reading == ["- **A restart: go failed** lost_orders.",
                           "- A restart: survived by py (every check passed)."]  # fmt: skip


def test_a_target_that_could_not_be_checked_is_a_finding() -> None:
    out = section(study({}, errors=["py: s.py: exit 1: boom"]))
    assert out.reading == ["- **A restart: not checked** for py: s.py: exit 1: boom"]
