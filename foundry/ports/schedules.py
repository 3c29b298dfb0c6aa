"""The schedule port: periodic schedules' state, kept beside the queue their jobs go to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    # The values are loaded by whoever makes them: a process that only checks a backend
    # against the port (the container) never creates their classes.
    from foundry.ports.schedule_types import (
        Fired,
        Firing,
        Poll,
        ScheduleEntry,
        ScheduleListing,
    )


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

    * One queue whose data the backend refuses (``QueueBroken``) does not stop the others':
      ``poll`` reads the others and names it in ``Poll.broken``, ``fire`` answers its
      firings with ``Fired.refused``, ``schedule_states`` lists the others' and names it in
      ``ScheduleListing.broken``, ``sync_schedules`` syncs the others, then raises
      ``QueuesBroken`` (one ``QueueBroken`` per queue).

    Backend failures raise ``QueueUnavailable``; a queue or schedule name that is not a string
    raises ``TypeError`` naming what to pass, before the backend is asked.
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

    def schedule_states(self) -> ScheduleListing:
        """Every schedule the backend knows, sorted by name, then queue, but those of the
        queues that refused to be read, named apart (``ScheduleListing.broken``)."""
        ...

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop the schedule firing; whether it exists."""
        ...

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """Let a paused (or orphaned) schedule fire again from ``next_at``; ticks missed while
        paused are not caught up. One neither paused nor orphaned is left as it is (moving
        its next tick would drop a tick it has yet to fire).

        Checked and changed in one atomic step; the answer says which it was: ``True`` if
        it was paused or orphaned and is resumed, ``False`` if it is stored and was neither
        (nothing changed), ``None`` if no such schedule is stored."""
        ...

    def forget_schedule(self, queue: str, name: str) -> bool:
        """Remove the schedule's state (an orphan's, after its code is gone); whether it
        existed. Its jobs already enqueued stay."""
        ...
