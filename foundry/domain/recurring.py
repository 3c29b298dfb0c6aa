"""Recurring times: a fixed interval, or a cron expression in a named time zone.

Both answer ``next_after(t)`` (the first tick strictly after ``t``) and
``latest_at_or_before(t)``, purely: no clock, no I/O. Ticks are instants (aware UTC datetimes).

Daylight-saving rules of ``Cron`` (the expression is read in local wall time):

* a local time that does not exist (skipped by a spring-forward) fires once, at the first
  moment after the gap (Berlin ``30 2 * * *`` fires at 03:00 CEST on the last Sunday of March);
  several skipped times fire once together, and with a tick at the gap's end only once;
* a local time that happens twice (a fall-back) fires once, at its first occurrence; the
  repeated hour fires nothing more (an hourly ``0 * * * *`` skips the second 02:00).

So a cron tick is never duplicated nor lost by a transition; for a schedule that must keep a
steady pace in real time, use ``Every``, which is anchored in UTC and ignores zones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

import attrs

#: ``Every``'s default anchor: ticks at whole multiples of the interval since the Unix epoch.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
#: Candidates a search may pass over (a fall-back hour of an every-second cron is 3,600).
_SEARCH_LIMIT = 100_000


class CronRules(Protocol):
    """A parsed cron expression over naive local wall times (a library behind it).

    * ``local_times_after(n)`` yields every matching wall time strictly after ``n``, ascending;
      ``local_times_before(n)`` every one strictly before ``n``, descending. Whole seconds.
    * Either may end (no match within the library's horizon).
    """

    def local_times_after(self, local: datetime) -> Iterator[datetime]:
        """Matching naive wall times after ``local``, ascending."""
        ...

    def local_times_before(self, local: datetime) -> Iterator[datetime]:
        """Matching naive wall times before ``local``, descending."""
        ...


class NoTick(ValueError):
    """A recurrence has no tick in the searched direction (a cron that never matches again)."""


def _aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= _ZERO:
        raise ValueError(f"{attribute.name} must be a positive timedelta, got {value!r}")


@attrs.frozen
class Every:
    """Ticks at ``anchor + k * interval`` for every integer ``k``: no drift, whatever runs late.

    The default anchor is the Unix epoch, so ``Every(timedelta(minutes=5))`` ticks at :00, :05,
    ... of every hour (UTC), on every host alike.
    """

    interval: timedelta = attrs.field(validator=_positive)
    anchor: datetime = attrs.field(default=EPOCH, validator=_aware)

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t``."""
        return self.anchor + ((t - self.anchor) // self.interval + 1) * self.interval

    def latest_at_or_before(self, t: datetime) -> datetime:
        """The last tick at or before ``t``."""
        return self.anchor + ((t - self.anchor) // self.interval) * self.interval

    def describe(self) -> str:
        """How the CLI shows it."""
        return f"every {self.interval}"


@attrs.frozen
class Cron:
    """A cron expression read in the wall time of ``zone`` (see the module's DST rules).

    ``rules`` evaluates the expression; the application builds it from a cron library, so the
    domain stays free of third-party code. Equality is by expression and zone.
    """

    expression: str = attrs.field(validator=attrs.validators.instance_of(str))
    zone: tzinfo = attrs.field(validator=lambda _, __, value: _check_zone(value))
    rules: CronRules = attrs.field(eq=False, repr=False)

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t``; raises ``NoTick`` if the expression never
        matches again."""
        start = t.astimezone(self.zone).replace(tzinfo=None)
        return self._first(self.rules.local_times_after(start), lambda at: at > t)

    def latest_at_or_before(self, t: datetime) -> datetime:
        """The last tick at or before ``t``; raises ``NoTick`` if there is none."""
        local = t.astimezone(self.zone)
        # In a repeated hour's second pass, first-pass times later on the wall are still ticks
        # at or before t: start from the wall time t has with the first pass's offset.
        ahead = local.replace(fold=0).utcoffset() or _ZERO
        start = (t.astimezone(UTC) + ahead).replace(tzinfo=None) + timedelta(seconds=1)
        return self._first(self.rules.local_times_before(start), lambda at: at <= t)

    def describe(self) -> str:
        """How the CLI shows it."""
        return f"{self.expression} ({self.zone})"

    def _first(self, candidates: Iterator[datetime], fits: _Fits) -> datetime:
        for _, local in zip(range(_SEARCH_LIMIT), candidates, strict=False):
            instant = wall_to_instant(local, self.zone)
            if fits(instant):
                return instant
        raise NoTick(f"cron {self.expression!r} has no matching time in that direction")


def _check_zone(value: object) -> None:
    if not isinstance(value, tzinfo):
        raise ValueError(f"zone must be a tzinfo (zoneinfo.ZoneInfo), got {value!r}")


class _Fits(Protocol):
    def __call__(self, at: datetime, /) -> bool: ...


def wall_to_instant(local: datetime, zone: tzinfo) -> datetime:
    """The instant (UTC) a naive wall time of ``zone`` fires at: its first occurrence, or for a
    time skipped by a transition, the transition itself (the first moment after the gap).

    Monotonic: a later wall time never fires earlier.
    """
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap, fold=1 reads the wall time with the later offset: an instant before the
    # transition; fold=0 (above) with the earlier offset: one after it.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(before, first, zone)


def _transition(before: datetime, after: datetime, zone: tzinfo) -> datetime:
    """The first instant in (``before``, ``after``] whose offset is ``after``'s, by bisection
    over whole seconds (zones change offsets on whole seconds)."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


Recurrence = Every | Cron
