"""The asyncio producer's port: what an event loop needs to put jobs into a queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

from foundry.domain import Job
from foundry.ports.queue_types import EnqueueOutcome, JobRecord


@runtime_checkable
class AsyncQueuePort(Protocol):
    """``QueuePort``'s enqueue side (and ``get``, ``wait``) for asyncio code, with the same
    promises.

    * A stored job is the one ``QueuePort.enqueue`` would store: same id, record and schedule;
      any worker serves it.
    * Enqueue is idempotent by job id (Q8): a job whose id is already held is not stored again;
      a unique job (Q9) whose key is held returns ``Duplicate`` with the pending job's id.
    * ``enqueue_many`` stores every job or, for bad input, none; outcomes come in the jobs'
      order.
    * No call blocks the event loop on I/O.

    Raises ``InvalidJob`` (a payload the codec refuses; nothing written), ``QueueUnavailable``
    (the store cannot be reached after bounded retries; safe to call again: writes are
    idempotent) and ``QueueBroken`` (the queue's stored data is not Foundry's).
    """

    async def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store ``job``; ``Enqueued`` or, for a held id or unique key, ``Duplicate``."""
        ...

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Store every job; one outcome per job, in order."""
        ...

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record as ``QueuePort.get`` gives it (``None``: unknown or expired);
        without ``queue`` every known queue is searched."""
        ...

    async def wait(
        self, job_id: str, timeout: timedelta, queue: str | None = None
    ) -> JobRecord | None:
        """``QueuePort.wait`` for an event loop: the record once final, waiting up to
        ``timeout`` without polling and without blocking the loop; the record as it is when
        the time runs out; ``None`` if the job is unknown."""
        ...

    async def aclose(self) -> None:
        """Close the connections this adapter opened (a later call opens them again)."""
        ...
