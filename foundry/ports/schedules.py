"""The schedule port: periodic schedules' state, kept beside the queue their jobs go to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from foundry.domain import Job
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
    waits)."""

    now: datetime
    due: tuple[DueSchedule, ...]
    next_at: datetime | None


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
    skipped because the previous tick's job still holds the schedule's unique key)."""

    name: str
    applied: bool
    outcomes: tuple[EnqueueOutcome, ...] = ()


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


@runtime_checkable
class SchedulePort(Protocol):
    """Periodic schedules' state, in the backend of the queue their jobs go to.

    * Each schedule (by name) has one next tick; ``poll`` finds those due in O(log n + due).
    * ``fire`` is atomic per firing: the tick's jobs are enqueued (as ``QueuePort.enqueue``:
      idempotent by id, Q8; refused as ``Duplicate`` by a held unique key, Q9) and the next
      tick moves, together, or nothing happens. A firing whose ``due_from`` no longer stands
      is not applied, so any number of schedulers step each schedule once per tick.
    * Time is the backend's (``poll().now``: Redis ``TIME``, or the memory queue's clock).
    * A paused or orphaned schedule is never due.

    Backend failures raise ``QueueUnavailable``.
    """

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """Make the declared schedules known: an unknown (or orphaned) one starts waiting for
        its ``first_at``; with ``redefine``, one stored with another definition is given this
        one and waits for ``first_at``. A paused schedule stays paused."""
        ...

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """The backend's time and up to ``limit`` schedules of ``queues`` whose next tick is at
        or before it plus ``ahead``."""
        ...

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """Apply each firing atomically (see the class); one answer per firing, in order."""
        ...

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """Mark schedules no longer declared as orphaned: they stop being due, stay listed."""
        ...

    def schedule_states(self) -> list[ScheduleState]:
        """Every schedule the backend knows, sorted by name, then queue."""
        ...

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop the schedule firing; whether it exists."""
        ...

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool:
        """Let a paused (or orphaned) schedule fire again from ``next_at``; ticks missed while
        paused are not caught up. Whether it exists."""
        ...

    def forget_schedule(self, queue: str, name: str) -> bool:
        """Remove the schedule's state (an orphan's, after its code is gone); whether it
        existed. Its jobs already enqueued stay."""
        ...
