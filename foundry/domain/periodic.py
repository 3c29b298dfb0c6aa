"""Periodic schedules: a handler run on a recurrence, and what fires after downtime.

A ``PeriodicSchedule`` is declared in code under a stable name. Each tick's job id is derived
from (name, tick instant), so any number of schedulers enqueue it once (a re-sent enqueue of
an id is a no-op). ``CatchUp.plan`` decides, purely, which ticks fire when a scheduler finds
the schedule due: given the first unfired tick and now.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from foundry.domain.durations import as_duration
from foundry.domain.errors import InvalidSchedule
from foundry.domain.job import (
    DEFAULT_QUEUE,
    MAX_UNIQUE_KEY_LENGTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
    validate_queue_name,
)
from foundry.domain.recurring import Cron, Every, NoTick, Recurrence
from foundry.domain.schedule import LATEST_RUN_AT, MAX_DELAY

MAX_SCHEDULE_NAME = 200
_ZERO = timedelta(0)
_MICRO = timedelta(microseconds=1)
_MILLI = timedelta(milliseconds=1)


class CatchUpMode(enum.StrEnum):
    """Which missed ticks fire when a schedule is found due late (after downtime)."""

    NONE = "none"
    LATEST = "latest"
    ALL = "all"


@attrs.frozen
class Plan:
    """What a scheduler does with a due schedule: enqueue ``fire`` (ascending), then wait for
    ``next_at`` (always after now)."""

    fire: tuple[datetime, ...]
    next_at: datetime


@attrs.frozen
class CatchUp:
    """The catch-up policy.

    * ``latest`` (default): of the ticks missed, fire only the most recent one.
    * ``none``: fire a tick only if found within ``grace`` of it; older ones are skipped.
    * ``all``: fire every missed tick, but at most the ``cap`` most recent ones: never a
      burst beyond the cap.
    """

    mode: CatchUpMode = attrs.field(default=CatchUpMode.LATEST, converter=CatchUpMode)
    cap: int = attrs.field(default=10)
    grace: timedelta = attrs.field(default=timedelta(minutes=1), converter=as_duration)

    @cap.validator
    def _cap(self, _: attrs.Attribute[int], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"cap must be an int >= 1, got {value!r}")

    @grace.validator
    def _grace(self, _: attrs.Attribute[timedelta], value: object) -> None:
        if not isinstance(value, timedelta) or value < _ZERO:
            raise ValueError(
                f"grace must be a duration of 0 or more (seconds or a timedelta), got {value!r}"
            )

    def plan(self, recurrence: Recurrence, due_from: datetime, now: datetime) -> Plan:
        """The ticks to fire, given ``due_from`` (the first tick not fired yet) and ``now``.

        Never early: every tick fired is at or before ``now`` and at or after ``due_from``;
        ``next_at`` is the first tick after ``now``.
        """
        if now < due_from:
            return Plan((), due_from)
        following = recurrence.next_after(now)
        latest = recurrence.latest_at_or_before(now)
        if latest < due_from:
            return Plan((), following)
        if self.mode is CatchUpMode.NONE:
            return Plan((latest,) if now - latest <= self.grace else (), following)
        if self.mode is CatchUpMode.LATEST:
            return Plan((latest,), following)
        return Plan(_recent(recurrence, latest, due_from, self.cap), following)


def _recent(
    recurrence: Recurrence, latest: datetime, due_from: datetime, cap: int
) -> tuple[datetime, ...]:
    ticks = [latest]
    while len(ticks) < cap:
        try:
            earlier = recurrence.latest_at_or_before(ticks[-1] - _MICRO)
        except NoTick:
            break
        if earlier < due_from:
            break
        ticks.append(earlier)
    return tuple(reversed(ticks))


class Overlap(enum.StrEnum):
    """Whether a tick fires while the previous tick's job is still pending or running."""

    ALLOW = "allow"
    SKIP = "skip"


def _check_name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "the name must be a non-empty string; give name=..."
    if len(value) > MAX_SCHEDULE_NAME:
        return f"the name is {len(value)} characters; the limit is {MAX_SCHEDULE_NAME}"
    if not value.isprintable():
        return "the name holds control characters; use printable text"
    return None


@attrs.frozen
class PeriodicSchedule:
    """A handler to enqueue on every tick of ``recurrence``, under the stable ``name``.

    ``jitter`` delays each tick's job by a pseudo-random part of it (the same on every host,
    from the name and tick); ``overlap=SKIP`` skips a tick while the previous tick's job is
    pending or running.
    """

    name: str
    handler: str
    recurrence: Recurrence
    payload: dict[str, Any] = attrs.field(factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    catch_up: CatchUp = attrs.field(factory=CatchUp)
    jitter: timedelta = _ZERO
    overlap: Overlap = attrs.field(default=Overlap.ALLOW, converter=Overlap)

    def __attrs_post_init__(self) -> None:
        problem = _check_name(self.name) or self._problem() or self._queue_problem()
        if problem is not None:
            raise InvalidSchedule(str(self.name)[:80], problem)

    def _problem(self) -> str | None:
        recurrence: object = self.recurrence
        jitter, payload, priority = self.jitter, self.payload, self.priority
        if not isinstance(recurrence, Every | Cron):
            return "give cron='...' or every=timedelta(...)"
        return (
            _check_reach("every", recurrence.interval if isinstance(recurrence, Every) else _ZERO)
            or _check_jitter(jitter)
            or _check_payload(payload)
            or _check_priority(priority)
        )

    def _queue_problem(self) -> str | None:
        try:
            validate_queue_name(self.queue)
        except ValueError as error:
            return str(error)
        return None

    @property
    def definition(self) -> str:
        """The recurrence as text: stored beside the schedule's state, shown by the CLI, and
        compared to notice a schedule whose definition changed in code."""
        return self.recurrence.describe()

    def job_id(self, tick: datetime) -> str:
        """The id of ``tick``'s job: the same on every scheduler."""
        return f"sch-{_digest(self.name)[:16]}-{_micros(tick)}"

    def delay_of(self, tick: datetime) -> timedelta:
        """How long after ``tick`` its job runs: a stable part of ``jitter``, in whole ms."""
        if not self.jitter:
            return _ZERO
        span = self.jitter // _MILLI + 1
        return _MILLI * (int(_digest(f"{self.name}\0{_micros(tick)}")[:12], 16) % span)

    @property
    def unique_key(self) -> str:
        """The unique key every tick's job holds when overlapping ticks are skipped."""
        key = f"schedule:{self.name}"
        if len(key) <= MAX_UNIQUE_KEY_LENGTH:
            return key
        # Cut to fit, the digest keeps long names that share a start apart.
        return f"{key[: MAX_UNIQUE_KEY_LENGTH - 17]}#{_digest(self.name)[:16]}"

    def plan(self, due_from: datetime, now: datetime) -> Plan:
        """``catch_up.plan`` for this schedule's recurrence."""
        return self.catch_up.plan(self.recurrence, due_from, now)

    def first_tick(self, now: datetime) -> datetime:
        """The tick a new (or re-defined, or resumed) schedule waits for: the first after now."""
        return self.recurrence.next_after(now)


def _check_jitter(value: object) -> str | None:
    if isinstance(value, timedelta) and value >= _ZERO:
        return _check_reach("jitter", value)
    return f"jitter {value!r} must be a timedelta >= 0"


def _check_reach(what: str, value: timedelta) -> str | None:
    """A problem if ``value`` (an interval, a jitter) is longer than a job may be delayed:
    its ticks' jobs would be refused, one logged error a tick."""
    if value <= MAX_DELAY:
        return None
    return (
        f"{what}={value} is too long: at most {MAX_DELAY.days} days, so that every tick's job "
        f"can run before {LATEST_RUN_AT:%Y}; give a shorter one"
    )


def _check_payload(value: object) -> str | None:
    if isinstance(value, dict):
        return None
    return f"payload must be a dict of the handler's keyword arguments, got {value!r:.60}"


def _check_priority(value: object) -> str | None:
    if isinstance(value, int) and PRIORITY_MIN <= value <= PRIORITY_MAX:
        return None
    return f"priority {value!r} must be an int from {PRIORITY_MIN} to {PRIORITY_MAX}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // _MICRO
