"""Which job a handler is running: set by the pool child around each handler call."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from foundry.domain import Progress


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

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Report how far the job is: ``fraction`` from 0 to 1, and an optional short
        ``note``; ``get`` and ``foundry job show`` show the last one the queue stored.

        Cheap to call often: a report within a quarter second of the last one sent is
        dropped (unless it is 1), and the worker stores the latest at its next lease renewal,
        about once a second. A bad fraction or note raises ``ValueError``.
        """
        report = Progress(fraction, note)
        if _sink is not None:
            _sink(report)


_current: JobContext | None = None
_sink: Callable[[Progress], None] | None = None


def current_job() -> JobContext | None:
    """The job this process is running now, or ``None`` outside a pool child's handler."""
    return _current


def set_current(context: JobContext | None) -> None:
    """Set by the pool child before and after each handler call."""
    global _current  # noqa: PLW0603 - one job per process at a time, by design of the pool
    _current = context


def set_progress_sink(sink: Callable[[Progress], None] | None) -> None:
    """Where ``JobContext.progress`` reports go: set by the pool child (to its pipe)."""
    global _sink  # noqa: PLW0603 - one pool child per process, by design of the pool
    _sink = sink
