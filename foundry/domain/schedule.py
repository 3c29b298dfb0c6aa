"""When a job may first run: now, at a moment, or after a delay."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs


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
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen
class RunAt:
    """Claimable from ``at`` on (a moment in the past means now)."""

    at: datetime = attrs.field(validator=[attrs.validators.instance_of(datetime), _aware])

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed."""
        return max(self.at, now)


@attrs.frozen
class RunAfter:
    """Claimable ``delay`` after it is enqueued."""

    delay: timedelta = attrs.field(
        validator=[attrs.validators.instance_of(timedelta), _not_negative]
    )

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed."""
        return now + self.delay


Schedule = RunNow | RunAt | RunAfter
