"""When a job may first run: now, at a moment, or after a delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from foundry.domain.durations import shown
from foundry.domain.errors import InvalidJob

#: The longest delay a job may be given: every store can hold the run time it leads to.
MAX_DELAY = timedelta(days=100 * 365)
#: Run times must come before this moment (UTC), which every store can hold.
LATEST_RUN_AT = datetime(3000, 1, 1, tzinfo=UTC)


@attrs.frozen
class RunNow:
    """Claimable as soon as it is enqueued."""

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed."""
        return now


def _aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware (use datetime.now(UTC))")


def _not_negative(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative, got {shown(value)}")


def _within_reach(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value > MAX_DELAY:
        raise InvalidJob(
            "schedule",
            f"a {attribute.name} of {shown(value)} is too long: at most {MAX_DELAY.days} days",
        )


def _before_latest(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value >= LATEST_RUN_AT:
        raise InvalidJob(
            "schedule", f"{attribute.name} {value.isoformat()} must be before {LATEST_RUN_AT:%Y}"
        )


def _in_utc(value: datetime) -> datetime:
    """An aware moment in UTC, as every store gives it back; anything else as it is, for the
    validators to refuse (or, for a moment UTC cannot hold, to accept as the distant past).
    A moment that reads a pytz zone at another offset than the one in force is refused here,
    before the zone is converted away (``InvalidJob``, see ``pytz_misread``)."""
    if isinstance(value, datetime) and value.utcoffset() is not None:
        misread = pytz_misread(value)
        if misread is not None:
            raise InvalidJob("schedule", misread)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            return value
    return value


def pytz_misread(at: datetime) -> str | None:
    """What is wrong with ``at`` if its zone is pytz's (it has ``localize`` and ``normalize``)
    and its offset is not the one in force at that moment: the zone was attached by
    ``tzinfo=`` or ``replace()``, which gives a pytz zone its first offset (local mean time,
    Paris' +00:09), the moment was moved by arithmetic without ``normalize``, or its wall
    time does not exist there. Refused rather than read again: which wall time was meant
    cannot be told for sure."""
    zone = at.tzinfo
    normalize = getattr(zone, "normalize", None)
    if normalize is None or not hasattr(zone, "localize"):
        return None
    given, in_force = at.utcoffset(), normalize(at).utcoffset()
    if given == in_force:
        return None
    name = getattr(zone, "zone", None) or str(zone)
    return (
        f"at={at.isoformat()} reads pytz zone {name!r} at {_offset(given)} ({at.tzname()}), not "
        f"{_offset(in_force)}, the offset in force then: a pytz zone attached by tzinfo= or "
        "replace() gets its first offset (and a wall time a clock change skips has none). "
        "Write zone.localize(datetime(...)) (zone.normalize(at) after arithmetic) or use "
        f"zoneinfo.ZoneInfo({name!r})"
    )


def _offset(value: timedelta | None) -> str:
    """``+02:00``, ``+00:09:21``: an offset as ISO 8601 writes it."""
    total = int((value or timedelta(0)).total_seconds())
    sign, total = ("-", -total) if total < 0 else ("+", total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


@attrs.frozen
class RunAt:
    """Claimable from ``at`` on (a moment in the past means now); ``at`` is kept in UTC. A
    moment in a pytz zone attached without ``localize`` is refused (``InvalidJob``)."""

    at: datetime = attrs.field(
        converter=_in_utc,
        validator=[attrs.validators.instance_of(datetime), _aware, _before_latest],
    )

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed."""
        return max(self.at, now)


@attrs.frozen
class RunAfter:
    """Claimable ``delay`` after it is enqueued."""

    delay: timedelta = attrs.field(
        validator=[attrs.validators.instance_of(timedelta), _not_negative, _within_reach]
    )

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed."""
        return now + self.delay


Schedule = RunNow | RunAt | RunAfter
