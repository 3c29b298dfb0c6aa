"""The catch-up policy: which missed ticks fire, decided purely from the first unfired tick
and now; never early, never beyond the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.application.schedules.cron import parse_cron
from foundry.domain import CatchUp, CatchUpMode, Every, Plan

MINUTE = timedelta(minutes=1)
T0 = datetime(2030, 1, 1, tzinfo=UTC)
EVERY_MINUTE = Every(MINUTE)


def at(minutes: float) -> datetime:
    return T0 + minutes * MINUTE


def test_a_schedule_not_due_yet_fires_nothing_and_keeps_its_tick() -> None:
    assert CatchUp().plan(EVERY_MINUTE, at(5), at(4.5)) == Plan((), at(5))


@pytest.mark.parametrize("mode", list(CatchUpMode))
def test_a_tick_found_on_time_fires_under_every_policy(mode: CatchUpMode) -> None:
    plan = CatchUp(mode=mode).plan(EVERY_MINUTE, at(5), at(5) + timedelta(milliseconds=3))

    assert plan == Plan((at(5),), at(6))


def test_latest_fires_only_the_most_recent_missed_tick() -> None:
    assert CatchUp().plan(EVERY_MINUTE, at(5), at(60.5)) == Plan((at(60),), at(61))


def test_none_skips_ticks_found_later_than_the_grace() -> None:
    policy = CatchUp(mode="none", grace=timedelta(seconds=10))

    assert policy.plan(EVERY_MINUTE, at(5), at(60) + timedelta(seconds=11)) == Plan((), at(61))
    assert policy.plan(EVERY_MINUTE, at(5), at(60) + timedelta(seconds=10)) == Plan(
        (at(60),), at(61)
    )


def test_all_fires_every_missed_tick_up_to_the_cap_most_recent_first_kept() -> None:
    policy = CatchUp(mode="all", cap=4)

    assert policy.plan(EVERY_MINUTE, at(5), at(7.5)) == Plan((at(5), at(6), at(7)), at(8))
    assert policy.plan(EVERY_MINUTE, at(5), at(100)) == Plan(
        (at(97), at(98), at(99), at(100)), at(101)
    )


def test_all_walks_back_over_cron_ticks_in_a_zone() -> None:
    cron = parse_cron("0 9 * * 1-5", "Europe/Berlin")  # 09:00 Berlin on weekdays (08:00 UTC)
    friday = datetime(2030, 1, 4, 8, tzinfo=UTC)
    tuesday = datetime(2030, 1, 8, 12, tzinfo=UTC)

    plan = CatchUp(mode="all", cap=10).plan(cron, friday, tuesday)

    assert plan.fire == (
        friday,
        datetime(2030, 1, 7, 8, tzinfo=UTC),
        datetime(2030, 1, 8, 8, tzinfo=UTC),
    )
    assert plan.next_at == datetime(2030, 1, 9, 8, tzinfo=UTC)


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_a_cap_below_one_is_refused(cap: object) -> None:
    with pytest.raises(ValueError, match="cap must be an int >= 1"):
        CatchUp(mode="all", cap=cap)  # type: ignore[arg-type]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        CatchUp(mode="sometimes")  # type: ignore[arg-type]


@given(
    st.sampled_from(list(CatchUpMode)),
    st.integers(1, 20),
    st.integers(1, 600),
    st.integers(0, 10_000),
    st.integers(0, 100_000),
)
def test_a_plan_is_never_early_never_twice_and_never_beyond_the_cap(
    mode: CatchUpMode, cap: int, seconds: int, late_s: int, anchor_s: int
) -> None:
    every = Every(timedelta(seconds=seconds))
    due_from = every.next_after(T0 + timedelta(seconds=anchor_s))
    now = due_from + timedelta(seconds=late_s)

    plan = CatchUp(mode=mode, cap=cap).plan(every, due_from, now)

    assert all(due_from <= tick <= now for tick in plan.fire)
    assert list(plan.fire) == sorted(set(plan.fire))
    assert len(plan.fire) <= (cap if mode is CatchUpMode.ALL else 1)
    assert plan.next_at == every.next_after(now)
    if mode is not CatchUpMode.NONE:
        assert plan.fire[-1] == every.latest_at_or_before(now)


def test_the_grace_takes_seconds_as_every_duration_does() -> None:
    assert CatchUp(mode="none", grace=10) == CatchUp(mode="none", grace=timedelta(seconds=10))
    with pytest.raises(ValueError, match=r"grace must be a duration of 0 or more \(seconds"):
        CatchUp(grace=-1)
