"""The value type that crosses the batch port: a batch's record."""

from __future__ import annotations

from datetime import datetime

import attrs

from foundry.domain.batch import BatchProgress, Callback


@attrs.frozen
class BatchRecord:
    """Everything known about one batch: its progress, when it was dispatched and ended, the
    ids of its callbacks and which of them fired (enqueued)."""

    id: str
    queue: str
    progress: BatchProgress
    created_at: datetime
    finished_at: datetime | None = None
    callbacks: dict[Callback, str] = attrs.Factory(dict)
    fired: frozenset[Callback] = frozenset()
    reason: str | None = None  # why it was cancelled, if it was

    @property
    def state(self) -> str:
        """``running``, ``cancelling`` (cancelled, members still running), ``succeeded``,
        ``failed`` or ``cancelled``."""
        progress = self.progress
        if not progress.finished:
            return "cancelling" if progress.cancel_requested else "running"
        if progress.cancel_requested:
            return "cancelled"
        return "succeeded" if progress.succeeded else "failed"
