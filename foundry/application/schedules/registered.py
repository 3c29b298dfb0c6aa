"""The registry's periodic schedules, by stable name (``JobRegistry.periodic``/``schedule``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING, Any, TypedDict

from foundry.domain import InvalidSchedule

if TYPE_CHECKING:
    from foundry.application.schedules.declare import Handler
    from foundry.domain import CatchUp, Overlap, PeriodicSchedule


class ScheduleOptions(TypedDict, total=False):
    """The keyword arguments of ``JobRegistry.schedule`` after the name and handler.

    * ``cron``: 5 fields, 6 with seconds first, or ``@hourly``-style, read in zone ``tz``
      (an IANA name or a ``zoneinfo.ZoneInfo``, default UTC; a pytz zone is read as the
      zone it names); or ``every``: a positive interval (timedelta or seconds,
      at most ``MAX_DELAY``, 36,500 days), ticking at whole multiples of it since the Unix
      epoch, in UTC (``tz`` is refused).
    * ``payload``, ``queue``, ``priority``: the job of each tick (queue and priority default
      to the handler's).
    * ``catch_up``: after downtime fire the ``latest`` missed tick (default), ``none``, or
      ``all`` (at most ``CatchUp(mode='all', cap=...)``).
    * ``jitter``: delay each tick's job by up to this much (at most ``MAX_DELAY`` too);
      ``overlap='skip'``: skip a tick while the previous tick's job is pending or running
      (its jobs hold the key ``schedule:<name>`` in place of the handler's unique key, which
      the others keep).
    """

    cron: str | None
    every: timedelta | float | None
    tz: str | tzinfo | None
    payload: Mapping[str, Any] | None
    queue: str | None
    priority: int | None
    catch_up: str | CatchUp
    jitter: timedelta | float | None
    overlap: str | Overlap


class ScheduleBook:
    """Declared schedules by name; a name is declared once (or again identically)."""

    def __init__(self) -> None:
        self._schedules: dict[str, PeriodicSchedule] = {}

    def add(self, name: str, handler: Handler, options: ScheduleOptions) -> PeriodicSchedule:
        """Check and keep the schedule; ``InvalidSchedule`` for any bad argument."""
        # Imported at the first declaration: a worker whose app has no schedule never loads
        # the cron library, time zones or the periodic schedule's classes.
        from foundry.application.schedules.declare import declare  # noqa: PLC0415

        declared = declare(name, handler, **options)
        known = self._schedules.get(name)
        if known is not None and known != declared:
            raise InvalidSchedule(
                name, "another schedule already has this name; give one of them name=..."
            )
        self._schedules[name] = declared
        return declared

    def all(self) -> list[PeriodicSchedule]:
        """Every declared schedule, sorted by name."""
        return [self._schedules[name] for name in sorted(self._schedules)]

    def get(self, name: str) -> PeriodicSchedule | None:
        """The schedule declared as ``name``, if any."""
        return self._schedules.get(name)


def unknown_handler(name: str, handler: object) -> InvalidSchedule:
    """The error for a schedule naming a handler the registry does not have."""
    shown = handler if isinstance(handler, str) else getattr(handler, "__name__", handler)
    return InvalidSchedule(
        str(name),
        f"handler {shown!r} is not registered; decorate it with @registry.job (or put "
        "@registry.periodic on it) before declaring the schedule",
    )
