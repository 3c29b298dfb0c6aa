"""AsyncMemoryQueue: the asyncio producer's ports over a ``MemoryQueue`` (tests, development).

It shares the wrapped queue's store, so a test dispatches from an event loop and a worker (or
the test) claims from the ``MemoryQueue``. The memory queue does no I/O, so calling it from
the loop blocks nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from foundry.adapters.memory.queue import MemoryQueue
from foundry.domain import Batch, Job, JobState
from foundry.ports import BatchRecord, EnqueueOutcome, JobRecord


class AsyncMemoryQueue:
    """``AsyncQueuePort`` and ``AsyncBatchPort`` over ``queue``: the same jobs, the same
    outcomes."""

    def __init__(self, queue: MemoryQueue) -> None:
        self.queue = queue

    async def enqueue(self, job: Job) -> EnqueueOutcome:
        """As ``MemoryQueue.enqueue``."""
        return self.queue.enqueue(job)

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """As ``MemoryQueue.enqueue_many``."""
        return self.queue.enqueue_many(jobs)

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """As ``MemoryQueue.get``."""
        return self.queue.get(job_id, queue)

    async def wait(
        self, job_id: str, timeout: timedelta, queue: str | None = None
    ) -> JobRecord | None:
        """``MemoryQueue.wait`` in a worker thread, so the loop is not blocked."""
        return await asyncio.to_thread(self.queue.wait, job_id, timeout, queue)

    async def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """As ``MemoryQueue.cancel``."""
        return self.queue.cancel(job_id, queue, reason)

    async def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """As ``MemoryQueue.enqueue_batches``."""
        self.queue.enqueue_batches(items)

    async def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """As ``MemoryQueue.batch``."""
        return self.queue.batch(batch_id, queue)

    async def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """As ``MemoryQueue.cancel_batch``."""
        return self.queue.cancel_batch(batch_id, queue, reason)

    async def aclose(self) -> None:
        """Nothing to close."""
