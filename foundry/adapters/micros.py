"""Times and durations on the wire: integer microseconds, exact (no float rounding)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(delta: timedelta) -> int:
    """``delta`` in integer microseconds (exact)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_micros(moment: datetime) -> int:
    """An aware ``moment`` as integer microseconds since the epoch; ``TypeError`` if naive."""
    return micros(aware(moment) - EPOCH)


def aware(moment: datetime) -> datetime:
    """``moment`` if it has a timezone; ``TypeError`` naming the fix if it is naive (it would
    be read back as a different instant wherever the local time zone differs)."""
    if moment.utcoffset() is None:
        raise TypeError(
            f"the datetime {moment.isoformat()} has no timezone; use an aware one, "
            "e.g. datetime.now(UTC) or moment.replace(tzinfo=UTC)"
        )
    return moment
