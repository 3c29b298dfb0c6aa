"""AsyncMemoryQueue: the asyncio producer's ports over a ``MemoryQueue`` (tests, development).

It shares the wrapped queue's store, so a test dispatches from an event loop and a worker (or
the test) claims from the ``MemoryQueue``. The memory queue does no I/O, so calling it from
the loop blocks nothing; ``wait`` awaits the news of a job's end on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from functools import partial

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
        """As ``MemoryQueue.wait``, woken on the loop by the end of a job (``on_settled``):
        no thread is held, so a waiter that is cancelled leaves nothing behind, and any
        number wait at once."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout.total_seconds()
        ended = asyncio.Event()
        stop = self.queue.on_settled(partial(_wake, loop, ended))
        try:
            while True:
                ended.clear()
                record = self.queue.get(job_id, queue)
                remaining = give_up - loop.time()
                if record is None or record.state.is_final or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), remaining)
        finally:
            stop()

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

    async def members(self, batch_id: str, queue: str) -> list[str] | None:
        """As ``MemoryQueue.members``."""
        return self.queue.members(batch_id, queue)

    async def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """As ``MemoryQueue.job_records``."""
        return self.queue.job_records(job_ids, queue)

    async def aclose(self) -> None:
        """Nothing to close."""


def _wake(loop: asyncio.AbstractEventLoop, ended: asyncio.Event) -> None:
    """Set ``ended`` on its loop, from whichever thread ended a job."""
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(ended.set)
