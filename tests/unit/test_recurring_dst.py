"""Cron ticks across daylight-saving transitions: skipped times fire once at the first moment
after the gap, repeated times fire once (the first occurrence); intervals ignore zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from foundry.application.schedules.cron import parse_cron
from foundry.domain import Every


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(expression: str, zone: str, start: datetime, count: int) -> list[str]:
    cron = parse_cron(expression, zone)
    out, t = [], start
    for _ in range(count):
        t = cron.next_after(t)
        out.append(t.astimezone(cron.zone).isoformat())
    return out


# (zone, expression, start (UTC), expected local ticks)
TABLE = [
    # Berlin, spring forward 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 does not exist.
    (
        "Europe/Berlin",
        "30 2 * * *",
        utc(2024, 3, 29, 12),
        [
            "2024-03-30T02:30:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-04-01T02:30:00+02:00",
        ],
    ),
    # Several skipped times and the gap's end fire once together.
    (
        "Europe/Berlin",
        "*/20 2-3 31 3 *",
        utc(2024, 3, 30, 23),
        [
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:20:00+02:00",
            "2024-03-31T03:40:00+02:00",
        ],
    ),
    # Berlin, fall back 2024-10-27 03:00 CEST -> 02:00 CET: 02:30 happens twice, fires once.
    (
        "Europe/Berlin",
        "30 2 * * *",
        utc(2024, 10, 25, 12),
        [
            "2024-10-26T02:30:00+02:00",
            "2024-10-27T02:30:00+02:00",
            "2024-10-28T02:30:00+01:00",
        ],
    ),
    # Hourly through the fall back: the repeated 02:00 hour fires once.
    (
        "Europe/Berlin",
        "0 * * * *",
        utc(2024, 10, 26, 23, 30),
        [
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T03:00:00+01:00",
            "2024-10-27T04:00:00+01:00",
        ],
    ),
    # New York, spring forward 2024-03-10 02:00 EST -> 03:00 EDT.
    (
        "America/New_York",
        "15 2 * * *",
        utc(2024, 3, 9, 0),
        [
            "2024-03-09T02:15:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-11T02:15:00-04:00",
        ],
    ),
    # New York, fall back 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 fires once, in EDT.
    (
        "America/New_York",
        "*/30 1-2 * * *",
        utc(2024, 11, 3, 4),
        [
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T02:00:00-05:00",
            "2024-11-03T02:30:00-05:00",
        ],
    ),
    # Lord Howe, spring forward 2024-10-06 02:00 -> 02:30 (+10:30 -> +11): 02:15 is skipped.
    (
        "Australia/Lord_Howe",
        "15 2 * * *",
        utc(2024, 10, 4, 12),
        [
            "2024-10-05T02:15:00+10:30",
            "2024-10-06T02:30:00+11:00",
            "2024-10-07T02:15:00+11:00",
        ],
    ),
    # Lord Howe, fall back 2024-04-07 02:00 -> 01:30 (+11 -> +10:30): 01:45 fires once.
    (
        "Australia/Lord_Howe",
        "*/15 1 7 4 *",
        utc(2024, 4, 6, 13),
        [
            "2024-04-07T01:00:00+11:00",
            "2024-04-07T01:15:00+11:00",
            "2024-04-07T01:30:00+11:00",
            "2024-04-07T01:45:00+11:00",
        ],
    ),
]


@pytest.mark.parametrize(("zone", "expression", "start", "expected"), TABLE)
def test_cron_ticks_across_a_transition_fire_once_each(
    zone: str, expression: str, start: datetime, expected: list[str]
) -> None:
    assert ticks(expression, zone, start, len(expected)) == expected


@pytest.mark.parametrize(("zone", "expression", "start", "expected"), TABLE)
def test_latest_at_or_before_walks_the_same_ticks_backwards(
    zone: str, expression: str, start: datetime, expected: list[str]
) -> None:
    cron = parse_cron(expression, zone)
    instants = [datetime.fromisoformat(text) for text in expected]

    for instant in instants:
        assert cron.latest_at_or_before(instant) == instant
        assert cron.latest_at_or_before(instant + timedelta(seconds=59)) == instant
    for earlier, later in itertools.pairwise(instants):
        assert cron.latest_at_or_before(later - timedelta(microseconds=1)) == earlier


def test_in_the_second_pass_of_a_repeated_hour_the_latest_tick_is_the_first_pass_one() -> None:
    cron = parse_cron("*/15 1 * * *", "America/New_York")
    second_pass = datetime.fromisoformat("2024-11-03T01:05:00-05:00")

    latest = cron.latest_at_or_before(second_pass)

    assert latest.astimezone(cron.zone).isoformat() == "2024-11-03T01:45:00-04:00"
    assert cron.next_after(second_pass).astimezone(cron.zone).isoformat() == (
        "2024-11-04T01:00:00-05:00"
    )


def test_an_interval_keeps_its_pace_in_utc_through_a_transition() -> None:
    every = Every(timedelta(hours=1))
    t = utc(2024, 10, 27, 0, 10)

    seen = []
    for _ in range(3):
        t = every.next_after(t)
        seen.append(t)

    assert seen == [utc(2024, 10, 27, 1), utc(2024, 10, 27, 2), utc(2024, 10, 27, 3)]


def test_an_interval_is_anchored_so_late_evaluation_does_not_drift() -> None:
    every = Every(timedelta(seconds=7), anchor=utc(2030, 1, 1))

    assert every.next_after(utc(2030, 1, 1, 0, 0, 13)) == utc(2030, 1, 1, 0, 0, 14)
    assert every.next_after(utc(2030, 1, 1, 0, 0, 14)) == utc(2030, 1, 1, 0, 0, 21)
    assert every.latest_at_or_before(utc(2030, 1, 1, 0, 0, 20)) == utc(2030, 1, 1, 0, 0, 14)
    assert every.latest_at_or_before(utc(2029, 12, 31, 23, 59, 59)) == utc(2029, 12, 31, 23, 59, 53)


class PytzLikeZone(tzinfo):
    """A zone as pytz makes one: read through ``replace(tzinfo=...)`` it gives the zone's first
    offset (Berlin's local mean time, +00:53), as pytz's do; ``localize`` is the right way."""

    zone = "Europe/Berlin"

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(minutes=53, seconds=28)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "LMT"

    def localize(self, dt: datetime) -> datetime:
        return dt.replace(tzinfo=ZoneInfo(self.zone))


def test_a_pytz_zone_is_read_as_the_iana_zone_it_names_not_its_local_mean_time() -> None:
    cron = parse_cron("0 6 * * *", PytzLikeZone())

    tick = cron.next_after(utc(2024, 7, 1))

    assert tick == utc(2024, 7, 1, 4)  # 06:00 CEST
    assert cron.zone == ZoneInfo("Europe/Berlin")


def test_a_pytz_zone_naming_no_known_zone_is_refused_naming_the_fix() -> None:
    zone = PytzLikeZone()
    zone.zone = "Nowhere/Atlantis"

    with pytest.raises(ValueError, match=r"zoneinfo\.ZoneInfo\('Area/City'\)"):
        parse_cron("0 6 * * *", zone)
