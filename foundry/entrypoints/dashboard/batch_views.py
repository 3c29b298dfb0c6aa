"""What the batches page and its API show and do, through the batch port only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from foundry.entrypoints.dashboard.values import BadInput, batch_id, iso, queue_name
from foundry.ports import BatchPort, BatchRecord

#: How deep a listing of every queue's batches pages (it reads ``offset + limit`` batches of
#: each queue to merge them); past it, a queue is named.
EVERY_QUEUE_DEPTH = 10_000


@attrs.frozen
class BatchPage:
    """One page of a queue's batches (``queue=None``: of every queue), newest first."""

    queue: str | None
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
        """The newest batches of a queue, or of every queue when none is named."""
        name = queue_name(raw_queue) if raw_queue else None
        if self.port is None:
            return BatchPage(name, (), offset, limit, (), kept=False)
        queues = tuple(self._queues())
        if name is not None:
            found = self.port.batches(name, offset=offset, limit=limit)
        else:
            found = self._of_every_queue(queues, offset, limit)
        return BatchPage(name, tuple(found), offset, limit, queues, kept=True)

    def _of_every_queue(
        self, queues: tuple[str, ...], offset: int, limit: int
    ) -> list[BatchRecord]:
        """Every queue's batches merged newest first: the newest ``offset + limit`` of each."""
        assert self.port is not None
        if offset + limit > EVERY_QUEUE_DEPTH:
            raise BadInput(
                f"offset {offset} goes past the newest {EVERY_QUEUE_DEPTH} batches of every "
                "queue; name a queue (queue=...) to page further"
            )
        found = [
            record
            for name in queues
            for record in self.port.batches(name, offset=0, limit=offset + limit)
        ]
        found.sort(key=lambda record: record.created_at, reverse=True)
        return found[offset : offset + limit]

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
