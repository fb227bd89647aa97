from __future__ import annotations

import pytest

from bench.launch.cpusets import CpuSetError, parse_cpu_list, plan


def test_two_cpus_split_system_and_generator() -> None:
    cpus = plan([0, 1])
    assert cpus.system == [1]
    assert cpus.loadgen == [0]
    assert cpus.support == [0]
    assert not cpus.shared


def test_four_cpus_split_in_halves() -> None:
    cpus = plan([0, 1, 2, 3])
    assert cpus.loadgen == [0, 1]
    assert cpus.system == [2, 3]


def test_one_cpu_is_shared_and_says_so() -> None:
    cpus = plan([3])
    assert cpus.system == cpus.loadgen == [3]
    assert cpus.shared


def test_explicit_system_set_leaves_the_rest_to_the_generator() -> None:
    cpus = plan([0, 1, 2, 3], system=[3])
    assert cpus.system == [3]
    assert cpus.loadgen == [0, 1, 2]


def test_overlapping_explicit_sets_are_marked_shared() -> None:
    assert plan([0, 1], system=[0, 1], loadgen=[1]).shared


def test_unavailable_cpu_is_refused() -> None:
    with pytest.raises(CpuSetError, match="--cpus-system: CPUs \\[7\\]"):
        plan([0, 1], system=[7])


def test_cpu_list_syntax() -> None:
    assert parse_cpu_list("0,2-4") == [0, 2, 3, 4]
    with pytest.raises(CpuSetError, match="not a CPU list"):
        parse_cpu_list("one")
