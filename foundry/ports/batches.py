"""The batch port: jobs dispatched together, their progress, and callbacks at their end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from foundry.domain.exports import lazy_exports

if TYPE_CHECKING:
    from foundry.domain.batch import Batch
    from foundry.domain.job import Job

    # re-exported: the ``as`` marks it public for the type checker
    from foundry.ports.batch_types import BatchRecord as BatchRecord  # noqa: PLC0414
    from foundry.ports.inspection import JobRecord

# The record (and the batch classes it holds) loads at first use: a worker or a dispatcher
# that never touches a batch never imports them.
_LATER = {"BatchRecord": "foundry.ports.batch_types"}
__getattr__, __dir__ = lazy_exports(__name__, _LATER, _LATER)


@runtime_checkable
class BatchPort(Protocol):
    """Batches over a queue's jobs (the ``QueuePort``'s promises hold for every member and
    callback). The promises (the contract suite proves each one):

    * B1 One write: ``enqueue_batches`` stores every job and batch it is given, or (bad input,
      a backend failure before the write) none; a re-send of the same batch id changes nothing.
    * B2 Progress: ``batch`` counts each member once, when it ends (completed, dead,
      cancelled or deleted); a member requeued from the dead letters is not counted again.
    * B3 Callbacks: each callback job is enqueued exactly once, in the same atomic step as the
      member end that fires it: ``catch`` at the first member that goes dead; at the last
      member's end ``then`` (every member completed, or ``allow_failures`` and the batch not
      cancelled) and ``finally`` (always).
    * B4 Cancel: ``cancel_batch`` cancels the pending members, asks the running ones to stop
      (as ``QueuePort.cancel`` does), and ``then`` never fires.
    * B5 Waiting for a batch: a job whose ``after`` names a batch id waits for the batch's
      end, which counts as its completion when ``then`` fired, else as a failure.

    Backend failures raise ``QueueUnavailable``; a batch id or queue name that is not a string
    raises ``TypeError`` naming what to pass, before the backend is asked.
    """

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """Store ``items`` (jobs and batches of one queue), in order, in one write (one round
        trip where the backend allows).

        A job (or a batch's member) may name in ``after`` a job or batch earlier in ``items``
        or already stored. Raises ``InvalidJob`` before any write for items of several queues,
        a job of a batch holding a unique key, or an ``after`` naming something the queue does
        not hold.
        """
        ...

    def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """The batch's record, ``None`` if unknown (an ended batch is kept as long as a
        completed job's record); ``queue`` spares the search of every queue."""
        ...

    def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """Cancel the batch (B4): its record after the call, ``None`` if unknown. A batch that
        ended is left as it is; a re-send changes nothing."""
        ...

    def batches(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[BatchRecord]:
        """The batches of ``queue`` still kept, newest first."""
        ...

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """The ids of the batch's members in its order (as dispatched, each after the members
        it waits for), ended or not, in one read; ``None`` if ``queue`` keeps no such batch
        or keeps no member list for it (PostgreSQL: a batch stored before migration 0017)."""
        ...

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """The records of ``job_ids``, jobs of ``queue`` (a batch's members), in that order,
        each as ``QueuePort.get(job_id, queue)`` shows it (``None`` for one not known), read
        together in one round trip (what waiting for a batch reads at each wake)."""
        ...
