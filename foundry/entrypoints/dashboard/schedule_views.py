"""What the schedules page and its API show and do, through the schedule port only.

The dashboard does not load the app, so it knows the schedules the backend stores (those a
worker or ``foundry schedules run-forever`` has made known), not their code: it lists them
and pauses, resumes and forgets them as ``foundry schedules`` does. Resuming needs no
recurrence: the schedule becomes due from the backend's now, and the next scheduler to find
it fires only ticks after that moment (none missed while paused) and moves it to its next.
"""

from __future__ import annotations

from typing import Any

import attrs

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


def status(state: ScheduleState) -> str:
    """``paused``, ``orphaned`` (its code is gone from the app) or ``active``."""
    return "paused" if state.paused else "orphaned" if state.orphaned else "active"


@attrs.frozen
class SchedulePage:
    """One page of the stored schedules, sorted by name, then queue."""

    schedules: tuple[ScheduleState, ...]
    total: int
    offset: int
    limit: int


class ScheduleViews:
    """The dashboard's reads and actions over the schedule port."""

    def __init__(self, port: SchedulePort) -> None:
        self.port = port

    def page(self, offset: int, limit: int) -> SchedulePage:
        """The stored schedules from ``offset``, at most ``limit``."""
        every = self.port.schedule_states()
        return SchedulePage(tuple(every[offset : offset + limit]), len(every), offset, limit)

    def pause(self, raw_queue: object, raw_name: object) -> bool:
        """Stop the schedule firing; whether it is stored."""
        return self.port.pause_schedule(queue_name(raw_queue), schedule_name(raw_name))

    def resume(self, raw_queue: object, raw_name: object) -> bool:
        """Let the schedule fire again from now; whether it is stored."""
        queue, name = queue_name(raw_queue), schedule_name(raw_name)
        return self.port.resume_schedule(queue, name, self.port.poll((), 0).now)

    def forget(self, raw_queue: object, raw_name: object) -> bool:
        """Remove the schedule's stored state (its enqueued jobs stay); whether it was."""
        return self.port.forget_schedule(queue_name(raw_queue), schedule_name(raw_name))


def schedule_json(state: ScheduleState) -> dict[str, Any]:
    """A stored schedule as JSON."""
    return {
        "name": state.name,
        "queue": state.queue,
        "definition": state.definition,
        "status": status(state),
        "next_at": iso(state.next_at),
        "last_tick": iso(state.last_tick),
        "last_job_id": state.last_job_id,
    }
