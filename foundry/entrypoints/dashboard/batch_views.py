"""What the batches page and its API show and do, through the batch port only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from foundry.entrypoints.dashboard.values import batch_id, iso, queue_name
from foundry.ports import BatchPort, BatchRecord


@attrs.frozen
class BatchPage:
    """One page of a queue's batches, newest first."""

    queue: str
    batches: tuple[BatchRecord, ...]
    offset: int
    limit: int
    queues: tuple[str, ...]
    kept: bool  # whether the backend keeps batches at all


class BatchViews:
    """The dashboard's reads and actions over the batch port (``None``: a backend without
    batches, whose page says so)."""

    def __init__(self, port: BatchPort | None, queues: Callable[[], list[str]]) -> None:
        self.port = port
        self._queues = queues

    def page(self, raw_queue: str | None, offset: int, limit: int) -> BatchPage:
        """The newest batches of a queue (``default`` when none is named)."""
        name = queue_name(raw_queue or "default")
        if self.port is None:
            return BatchPage(name, (), offset, limit, (), kept=False)
        found = self.port.batches(name, offset=offset, limit=limit)
        return BatchPage(name, tuple(found), offset, limit, tuple(self._queues()), kept=True)

    def one(self, raw_id: str, raw_queue: str | None) -> BatchRecord | None:
        """A batch's record, searched in every queue unless one is named."""
        where = queue_name(raw_queue) if raw_queue else None
        return None if self.port is None else self.port.batch(batch_id(raw_id), where)

    def cancel(self, raw_id: str, raw_queue: str | None, reason: str) -> BatchRecord | None:
        """Cancel a batch; its record after, ``None`` if unknown."""
        where = queue_name(raw_queue) if raw_queue else None
        if self.port is None:
            return None
        return self.port.cancel_batch(batch_id(raw_id), where, reason)


def batch_json(record: BatchRecord) -> dict[str, Any]:
    """A batch's record as JSON."""
    progress = record.progress
    return {
        "id": record.id,
        "queue": record.queue,
        "state": record.state,
        "total": progress.total,
        "pending": progress.pending,
        "completed": progress.completed,
        "failed": progress.failed,
        "cancelled": progress.cancelled,
        "allow_failures": progress.allow_failures,
        "cancel_requested": progress.cancel_requested,
        "created_at": iso(record.created_at),
        "finished_at": iso(record.finished_at),
        "reason": record.reason,
        "callbacks": {which.value: job_id for which, job_id in sorted(record.callbacks.items())},
        "fired": sorted(which.value for which in record.fired),
    }
