"""What the schedules page and its API show and do, through the schedule port only.

The dashboard does not load the app, so it knows the schedules the backend stores (those a
worker or ``foundry schedules run-forever`` has made known), not their code: it lists them
and pauses, resumes and forgets them as ``foundry schedules`` does. Resuming needs no
recurrence: the schedule becomes due from the backend's now, and the next scheduler to find
it fires only ticks after that moment (none missed while paused) and moves it to its next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from foundry.application.schedules.status import schedule_status
from foundry.domain import QueueBroken
from foundry.domain.periodic import MAX_SCHEDULE_NAME
from foundry.entrypoints.dashboard.values import BadInput, iso, queue_name
from foundry.ports import SchedulePort, ScheduleState


def schedule_name(value: object) -> str:
    """A name a schedule may have, or ``BadInput``."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput('a schedule name must be a non-empty string, like {"name": "nightly"}')
    if len(value) > MAX_SCHEDULE_NAME or not value.isprintable():
        raise BadInput(
            f"{value[:80]!r} is not a schedule name (printable text, at most "
            f"{MAX_SCHEDULE_NAME} characters)"
        )
    return value


@attrs.frozen
class SchedulePage:
    """One page of the stored schedules, sorted by name, then queue, read at the backend's
    ``now``; ``broken``: the queues whose schedules the backend refused to read (theirs are
    not in ``schedules`` nor counted in ``total``)."""

    schedules: tuple[ScheduleState, ...]
    total: int
    offset: int
    limit: int
    now: datetime
    broken: tuple[QueueBroken, ...] = ()

    def status(self, state: ScheduleState) -> str:
        """The schedule's status at the page's ``now`` (``schedule_status``)."""
        return schedule_status(state, self.now)


class ScheduleViews:
    """The dashboard's reads and actions over the schedule port."""

    def __init__(self, port: SchedulePort) -> None:
        self.port = port

    def page(self, offset: int, limit: int) -> SchedulePage:
        """The stored schedules from ``offset``, at most ``limit``, and the queues whose
        schedules could not be read."""
        now = self.port.poll((), 0).now
        listing = self.port.schedule_states()
        every = listing.states
        shown = every[offset : offset + limit]
        return SchedulePage(shown, len(every), offset, limit, now, listing.broken)

    def pause(self, raw_queue: object, raw_name: object) -> bool:
        """Stop the schedule firing; whether it is stored."""
        return self.port.pause_schedule(queue_name(raw_queue), schedule_name(raw_name))

    def resume(self, raw_queue: object, raw_name: object) -> bool:
        """Let the schedule fire again from now; whether it is stored."""
        queue, name = queue_name(raw_queue), schedule_name(raw_name)
        return self.port.resume_schedule(queue, name, self.port.poll((), 0).now) is not None

    def forget(self, raw_queue: object, raw_name: object) -> bool:
        """Remove the schedule's stored state (its enqueued jobs stay); whether it was."""
        return self.port.forget_schedule(queue_name(raw_queue), schedule_name(raw_name))


def schedule_json(state: ScheduleState, now: datetime) -> dict[str, Any]:
    """A stored schedule as JSON, its status at the backend's ``now``."""
    return {
        "name": state.name,
        "queue": state.queue,
        "definition": state.definition,
        "status": schedule_status(state, now),
        "next_at": iso(state.next_at),
        "last_tick": iso(state.last_tick),
        "last_job_id": state.last_job_id,
    }
