"""The asyncio producer's ports: what an event loop needs to put jobs (and batches) into a
queue, read them and cancel them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from foundry.domain import Job, JobState
from foundry.ports.queue_types import EnqueueOutcome

if TYPE_CHECKING:
    from foundry.domain import Batch
    from foundry.ports.batch_types import BatchRecord
    from foundry.ports.inspection import JobRecord


@runtime_checkable
class AsyncQueuePort(Protocol):
    """``QueuePort``'s enqueue side (and ``get``, ``wait``, ``cancel``) for asyncio code, with
    the same promises.

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

    async def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """``QueuePort.cancel``: the job's state after the call, ``None`` if unknown."""
        ...

    async def aclose(self) -> None:
        """Close the connections this adapter opened (a later call opens them again)."""
        ...


@runtime_checkable
class AsyncBatchPort(Protocol):
    """``BatchPort``'s dispatch side for asyncio code, with its promises (B1-B5): a batch
    stored here is the one ``BatchPort.enqueue_batches`` would store, and no call blocks the
    event loop on I/O."""

    async def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """``BatchPort.enqueue_batches``: every item in one write, or none."""
        ...

    async def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """``BatchPort.batch``: the batch's record, ``None`` if unknown."""
        ...

    async def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """``BatchPort.cancel_batch``: its record after the call, ``None`` if unknown."""
        ...

    async def members(self, batch_id: str, queue: str) -> list[str] | None:
        """``BatchPort.members``: the ids of the batch's members in its order."""
        ...

    async def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """``BatchPort.job_records``: the records of ``job_ids`` in ``queue``, in one read."""
        ...
