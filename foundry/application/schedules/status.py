"""A stored schedule's status as a reader sees it: whether a scheduler fires it."""

from __future__ import annotations

from datetime import datetime

from foundry.application.schedules.scheduler import TAKEOVER_AFTER
from foundry.ports import ScheduleState


def schedule_status(state: ScheduleState, now: datetime) -> str:
    """``paused``, ``orphaned`` (a scheduler found its code gone), ``stalled`` or ``active``.

    ``stalled``: neither paused nor orphaned, yet its next tick passed more than
    ``TAKEOVER_AFTER`` ago at the backend's ``now``, so no running scheduler fires it: no
    worker runs the scheduler, or its code is gone from the app and no schedule the app still
    declares is in its queue (a scheduler marks orphans only in the queues it polls).
    """
    if state.paused:
        return "paused"
    if state.orphaned:
        return "orphaned"
    if state.next_at is not None and now - state.next_at > TAKEOVER_AFTER:
        return "stalled"
    return "active"
