from __future__ import annotations

from bench.stats.headroom import invalid_reasons
from tests.unit.conftest import make_load

FAST = [500] * 100


def test_a_generator_that_kept_up_is_valid() -> None:
    assert invalid_reasons(make_load(FAST)) == []


def test_a_saturated_generator_invalidates_the_trial() -> None:
    (reason,) = invalid_reasons(make_load(FAST, generator_cpu=95.0))
    assert reason == "the load generator used 95% CPU on 1 core(s): saturated"


def test_falling_short_of_the_target_rate_invalidates() -> None:
    (reason,) = invalid_reasons(make_load(FAST, target=1000.0, achieved=900.0))
    assert reason == "the load generator sent 900 of the 1,000 req/s asked for"


def test_poisson_arrivals_may_fall_short_by_chance_but_not_far() -> None:
    # 200 expected in 2 s: the count is 200 ± 14, so 188 (94%) is chance, 150 is not.
    chance = make_load(FAST, target=100.0, achieved=94.0).model_copy(update={"duration_s": 2.0})
    assert invalid_reasons(chance, poisson=True) == []
    assert invalid_reasons(chance) != []  # constant arrivals are counted exactly
    behind = chance.model_copy(update={"achieved_rps": 70.0})
    (reason,) = invalid_reasons(behind, poisson=True)
    assert reason == "the load generator sent 70 of the 100 req/s asked for"
    # With many arrivals the Poisson allowance shrinks below the 5% floor, which then holds.
    long = chance.model_copy(update={"duration_s": 1000.0, "achieved_rps": 94.0})
    assert invalid_reasons(long, poisson=True) != []


def test_late_requests_invalidate() -> None:
    (reason,) = invalid_reasons(make_load(FAST, slip_us=8000))
    assert reason.startswith("requests left late: schedule slip p99 8.0 ms")


def test_reaching_the_concurrency_cap_is_the_systems_doing_not_the_generators() -> None:
    load = make_load(FAST, target=1000.0, achieved=600.0, slip_us=50_000)
    capped = load.model_copy(update={"in_flight_cap_hit": True})
    assert invalid_reasons(load) != []
    assert invalid_reasons(capped) == []


def test_closed_loop_is_judged_on_cpu_only() -> None:
    load = make_load(FAST, target=None, achieved=10.0, model="closed-loop")
    assert invalid_reasons(load) == []


def test_nothing_measured_is_invalid() -> None:
    (reason,) = invalid_reasons(make_load([]))
    assert reason.startswith("the load generator fell behind its schedule")
    assert invalid_reasons(make_load([], model="closed-loop", target=None)) == [
        "no request was measured"
    ]


def test_unsent_requests_below_the_cap_mean_the_generator_fell_behind() -> None:
    load = make_load(FAST).model_copy(update={"errors": 7, "error_kinds": {"unsent": 7}})
    (reason,) = invalid_reasons(load)
    assert reason == (
        "the load generator fell behind its schedule: 7 requests of the window were never sent"
    )
    # At the cap the system is too slow to take them: they are its errors, the trial stands.
    assert invalid_reasons(load.model_copy(update={"in_flight_cap_hit": True})) == []
