"""Value types that cross the schedule port."""

from __future__ import annotations

from datetime import datetime

import attrs

from foundry.domain import Job, QueueBroken
from foundry.ports.queue_types import EnqueueOutcome


@attrs.frozen
class ScheduleEntry:
    """A schedule declared in code, as the backend stores it: ``definition`` is its
    recurrence as text, ``first_at`` the tick it waits for if the backend does not know it
    yet (or knows another definition)."""

    name: str
    queue: str
    definition: str
    first_at: datetime


@attrs.frozen
class DueSchedule:
    """A schedule whose next tick, ``due_from``, has come."""

    name: str
    queue: str
    definition: str
    due_from: datetime


@attrs.frozen
class Poll:
    """What a scheduler reads: the backend's ``now``, the schedules due by ``now + ahead`` (at
    most the limit asked for), and the earliest next tick of the others (``None``: none
    waits); ``broken``: one ``QueueBroken`` per queue whose schedules the backend refused to
    read (the others' are read all the same)."""

    now: datetime
    due: tuple[DueSchedule, ...]
    next_at: datetime | None
    broken: tuple[QueueBroken, ...] = ()


@attrs.frozen
class Firing:
    """One step of one schedule: enqueue ``jobs`` (one per tick, ascending) and move its next
    tick from ``due_from`` to ``next_at``, provided it still stands at ``due_from`` with this
    ``definition`` and is not paused. ``jobs`` may be empty (the catch-up skipped them)."""

    name: str
    queue: str
    definition: str
    due_from: datetime
    next_at: datetime
    jobs: tuple[tuple[datetime, Job], ...] = ()


@attrs.frozen
class Fired:
    """The answer to a ``Firing``: ``applied`` False when another scheduler took the step
    first (or the schedule was paused, removed or redefined meanwhile): nothing was written.
    ``outcomes`` has one ``EnqueueOutcome`` per job when applied (a ``Duplicate`` is a tick
    skipped because the previous tick's job still holds the schedule's unique key).
    ``refused``: the ``QueueBroken`` of the schedule's queue when the backend refused to work
    on it (then ``applied`` is False; whether it was is not known, and firing it again is
    safe: a firing whose ``due_from`` no longer stands is not applied twice)."""

    name: str
    applied: bool
    outcomes: tuple[EnqueueOutcome, ...] = ()
    refused: QueueBroken | None = None


@attrs.frozen
class ScheduleState:
    """Everything the backend keeps of one schedule, for listing."""

    name: str
    queue: str
    definition: str
    next_at: datetime | None
    last_tick: datetime | None = None
    last_job_id: str | None = None
    paused: bool = False
    orphaned: bool = False


@attrs.frozen
class ScheduleListing:
    """What the backend could read of its schedules: ``states``, sorted by name, then queue,
    and ``broken``, one ``QueueBroken`` per queue whose schedules it refused to read (in
    queue order; their schedules are not in ``states``, the other queues' are)."""

    states: tuple[ScheduleState, ...]
    broken: tuple[QueueBroken, ...] = ()
