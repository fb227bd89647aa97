"""Which CPUs the system, the load generator and the support processes get.

By default the system under test and the load generator never share a core when there are two or
more: the system takes the upper half of the CPUs the harness may use, the generator and the
support processes (simulated backends) the lower half. A pattern whose system scales with cores
under a light load (worker pools: `system_cpus = "all"` in its system.toml) gives the system every
CPU instead, the generator keeping the lower half, and the result says they share (`shared`).
Every implementation of a pattern gets the same set, so they are compared on equal terms. With a
single CPU everything shares it, and the result says so (`shared`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line checks CPU lists without loading pydantic's models
    from bench.models import CpuSets


class CpuSetError(Exception):
    """CPU sets that cannot be used."""


def parse_cpu_list(text: str) -> list[int]:
    """`0,2-3` → [0, 2, 3], as taskset and cgroups write CPU lists."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise CpuSetError(f"{text!r} is not a CPU list like 0,2-3") from None
    return sorted(cpus)


def usable(text: str) -> list[int]:
    """A CPU list of which every CPU is one this process may run on (`sched_getaffinity`)."""
    cpus = parse_cpu_list(text)
    have = sorted(os.sched_getaffinity(0))
    if not cpus:
        raise CpuSetError(f"{text!r} names no CPU")
    outside = sorted(set(cpus) - set(have))
    if outside:
        raise CpuSetError(f"CPUs {outside} are not available to this process (it may use {have})")
    return cpus


def plan(
    available: Sequence[int],
    system: Sequence[int] | None = None,
    loadgen: Sequence[int] | None = None,
    *,
    system_all: bool = False,
) -> CpuSets:
    """The CPU sets of a run; ``system_all`` gives the system every CPU (when none were chosen),
    the generator and the support processes still the lower half, which it then shares."""
    from bench.models import CpuSets

    cpus = sorted(available)
    if not cpus:
        raise CpuSetError("no CPUs available")
    for role, chosen in (("system", system), ("loadgen", loadgen)):
        outside = sorted(set(chosen or ()) - set(cpus))
        if outside:
            raise CpuSetError(f"--cpus-{role}: CPUs {outside} are not available (have {cpus})")
    if system and loadgen:
        sys_set, gen_set = sorted(system), sorted(loadgen)
    elif len(cpus) == 1:
        return CpuSets(system=cpus, loadgen=cpus, support=cpus, shared=True)
    elif system:
        sys_set = sorted(system)
        gen_set = [c for c in cpus if c not in sys_set] or cpus
    elif loadgen:
        gen_set = sorted(loadgen)
        sys_set = [c for c in cpus if c not in gen_set] or cpus
    else:
        half = len(cpus) // 2
        gen_set, sys_set = cpus[:half], cpus if system_all else cpus[half:]
    shared = bool(set(sys_set) & set(gen_set))
    return CpuSets(system=sys_set, loadgen=gen_set, support=gen_set, shared=shared)
