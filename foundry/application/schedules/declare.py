"""Declaring periodic schedules: registry arguments checked into a ``PeriodicSchedule``.

Every problem is refused here, at import time of the app, as ``InvalidSchedule`` naming the
schedule and the fix: a bad cron, an unknown zone, an interval that is not positive, a
payload the handler cannot take, an unknown handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, tzinfo
from typing import Any, Protocol

from foundry.application.limiting import filled
from foundry.application.schedules.cron import parse_cron
from foundry.domain import (
    MAX_DELAY,
    CatchUp,
    Every,
    FoundryError,
    InvalidSchedule,
    Job,
    Overlap,
    PeriodicSchedule,
    Recurrence,
)
from foundry.domain.durations import duration

_ZERO = timedelta(0)


class _Arguments(Protocol):
    def check(self, handler: str, payload: Mapping[str, Any]) -> None: ...


class Handler(Protocol):
    """What a declaration reads of a registered handler."""

    @property
    def name(self) -> str: ...
    @property
    def template(self) -> Job: ...
    @property
    def arguments(self) -> _Arguments: ...


def recurrence(
    name: str, *, cron: str | None, every: timedelta | float | None, tz: str | tzinfo | None
) -> Recurrence:
    """The recurrence the arguments describe (exactly one of ``cron`` and ``every``; ``tz``
    with ``cron`` only)."""
    if (cron is None) == (every is None):
        raise InvalidSchedule(
            name, "give exactly one of cron='*/5 * * * *' or every=timedelta(minutes=5)"
        )
    try:
        if cron is not None:
            return parse_cron(cron, "UTC" if tz is None else tz)
    except ValueError as error:
        raise InvalidSchedule(name, str(error)) from None
    if tz is not None and str(tz) not in ("UTC", "Z"):
        # Silently ignoring it would tick at UTC multiples while the reader expects local time.
        raise InvalidSchedule(
            name,
            f"tz={str(tz)!r} applies to cron= only: every= ticks at whole multiples of the "
            f"interval since the Unix epoch, in UTC; for a time of day in that zone give "
            f"cron='0 6 * * *', tz={str(tz)!r}",
        )
    return Every(_interval(name, every))


def _interval(name: str, given: object) -> timedelta:
    every = duration(given)
    if every is None or every <= _ZERO:
        raise InvalidSchedule(
            name,
            f"every={given!r} must be a positive timedelta (or seconds), at most "
            f"{MAX_DELAY.days} days, e.g. every=60",
        )
    if every % timedelta(milliseconds=1):
        raise InvalidSchedule(name, f"every={every} must be a whole number of milliseconds")
    return every


def catch_up_of(name: str, value: str | CatchUp) -> CatchUp:
    """``CatchUp`` from a mode name ('none', 'latest', 'all') or a ``CatchUp``."""
    if isinstance(value, CatchUp):
        return value
    try:
        return CatchUp(mode=value)
    except ValueError:
        raise InvalidSchedule(
            name,
            f"catch_up={value!r} is not a policy; give 'latest' (default), 'none', 'all' or "
            "CatchUp(mode='all', cap=...)",
        ) from None


def declare(
    name: str,
    handler: Handler,
    *,
    cron: str | None = None,
    every: timedelta | float | None = None,
    tz: str | tzinfo | None = None,
    payload: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    catch_up: str | CatchUp = "latest",
    jitter: timedelta | float | None = None,
    overlap: str | Overlap = Overlap.ALLOW,
) -> PeriodicSchedule:
    """A checked schedule of ``handler``; queue and priority default to the handler's."""
    if payload is not None and not isinstance(payload, Mapping):
        raise InvalidSchedule(
            name,
            f"payload= must be a dict of the handler's arguments, got {type(payload).__name__}",
        )
    data = dict(payload or {})
    try:
        handler.arguments.check(handler.name, data)
        Job(handler.name, data)  # checks the payload as any job's: JSON data, within the limit
        filled(handler.template.limit, data)  # every tick's limit key, from the same payload
    except FoundryError as error:
        raise InvalidSchedule(name, str(error)) from None
    try:
        overlap = Overlap(overlap)
    except ValueError:
        raise InvalidSchedule(name, f"overlap={overlap!r}: give 'allow' or 'skip'") from None
    return PeriodicSchedule(
        name=name,
        handler=handler.name,
        recurrence=recurrence(name, cron=cron, every=every, tz=tz),
        payload=data,
        queue=handler.template.queue if queue is None else queue,
        priority=handler.template.priority if priority is None else priority,
        catch_up=catch_up_of(name, catch_up),
        jitter=_jitter(name, jitter),
        overlap=overlap,
    )


def _jitter(name: str, given: object) -> timedelta:
    if given is None:
        return _ZERO
    jitter = duration(given)
    if jitter is None or jitter < _ZERO:
        raise InvalidSchedule(
            name,
            f"jitter={given!r} must be a timedelta >= 0 (or seconds), at most "
            f"{MAX_DELAY.days} days",
        )
    return jitter
