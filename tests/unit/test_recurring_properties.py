"""``next_after`` / ``latest_at_or_before`` against cronsim's own evaluation (the reference)
on generated expressions, zones and instants; and the rules that hold everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import given
from hypothesis import strategies as st

from foundry.application.schedules.cron import parse_cron
from foundry.domain import Every

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Chatham",
]


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.integers(2, max(2, (high - low) // 2)).map(lambda n: f"*/{n}"),
        st.tuples(value, value).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.tuples(value, value).map(lambda ab: f"{ab[0]},{ab[1]}"),
    )


expressions = st.tuples(
    st.one_of(st.none(), _field(0, 59)),
    _field(0, 59),
    _field(0, 23),
    st.one_of(st.just("*"), _field(1, 28)),
    st.one_of(st.just("*"), _field(1, 12)),
    st.one_of(st.just("*"), _field(0, 6)),
).map(lambda f: " ".join(part for part in f if part is not None))
instants = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)


def _steady(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    """No offset change between ``start - 3h`` and ``end + 3h`` (sampled every 15 minutes)."""
    offsets = set()
    moment = start - timedelta(hours=3)
    while moment <= end + timedelta(hours=3):
        offsets.add(moment.astimezone(zone).utcoffset())
        moment += timedelta(minutes=15)
    return len(offsets) == 1


@given(expressions, st.sampled_from(ZONES), instants)
def test_away_from_transitions_next_after_is_cronsims_next_tick(
    expression: str, zone_name: str, t: datetime
) -> None:
    cron = parse_cron(expression, zone_name)
    zone = ZoneInfo(zone_name)

    ours = cron.next_after(t)
    reference = next(CronSim(expression, t.astimezone(zone))).astimezone(UTC)

    if _steady(zone, t, max(ours, reference)):
        assert ours == reference


@given(expressions, st.sampled_from(ZONES), instants)
def test_ticks_are_consistent_both_ways(expression: str, zone_name: str, t: datetime) -> None:
    cron = parse_cron(expression, zone_name)

    following = cron.next_after(t)
    latest = cron.latest_at_or_before(t)

    assert following > t >= latest
    assert cron.latest_at_or_before(following) == following
    assert cron.latest_at_or_before(following - timedelta(microseconds=1)) == latest
    assert cron.next_after(latest) == following
    assert cron.next_after(following - timedelta(microseconds=1)) == following


@given(
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=40)),
    instants,
    instants,
)
def test_an_interval_ticks_at_whole_multiples_of_itself_from_its_anchor(
    interval: timedelta, anchor: datetime, t: datetime
) -> None:
    every = Every(interval, anchor)

    following = every.next_after(t)
    latest = every.latest_at_or_before(t)

    assert following > t >= latest
    assert following - latest == interval
    assert (latest - anchor) % interval == timedelta(0)
