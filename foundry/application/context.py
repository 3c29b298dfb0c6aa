"""Which job a handler is running: set by the pool child around each handler call."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class JobContext:
    """The job being run in this process: its id, name, queue, 1-based attempt, the
    metadata it was dispatched with (what ``on_dispatch`` middleware added, for one) and its
    lease's fencing token: every claim of the job gives a greater ``fence``, so a store that
    keeps the greatest fence it saw can refuse a write from an older attempt."""

    job_id: str
    name: str
    queue: str
    attempt: int
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    fence: int = 0


_current: JobContext | None = None


def current_job() -> JobContext | None:
    """The job this process is running now, or ``None`` outside a pool child's handler."""
    return _current


def set_current(context: JobContext | None) -> None:
    """Set by the pool child before and after each handler call."""
    global _current  # noqa: PLW0603 - one job per process at a time, by design of the pool
    _current = context
