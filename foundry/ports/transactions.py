"""Work that must wait for a database transaction: the port dispatch-after-commit uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from foundry.domain import Job
from foundry.ports.queue_types import EnqueueOutcome

if TYPE_CHECKING:
    from foundry.domain import Batch


@runtime_checkable
class CommitHooks(Protocol):
    """Runs callbacks once the current database transaction has committed.

    * Inside a transaction, ``callback`` runs once, after the outermost transaction commits,
      in the order the callbacks were given; never if that transaction (or the savepoint it
      was given in) rolls back.
    * Outside any transaction (autocommit), ``callback`` runs at once.
    * What a callback raises reaches whoever committed (the framework's commit call); the
      transaction has committed by then.
    """

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the current transaction commits (now, outside one)."""
        ...


@runtime_checkable
class TransactionalEnqueue(Protocol):
    """Writes jobs inside the caller's own open database transaction (no outbox, no window
    between the commit and the dispatch).

    * ``enqueue_within(connection, jobs)`` stores ``jobs`` as ``QueuePort.enqueue_many`` does
      (same ids, outcomes and promises), through ``connection``, inside the transaction the
      caller has open on it: they exist for workers once it commits (blocked workers are
      woken by the commit) and not at all if it rolls back. Outside a transaction
      (autocommit) they are stored at once.
    * ``connection`` is the backend's own connection type (for PostgreSQL a psycopg 3
      ``Connection``, or a SQLAlchemy session or connection, or a Django connection, over
      one); anything else raises ``ConfigurationError`` naming what it takes.
    * What the database raises inside the caller's transaction reaches the caller (the
      transaction is then the caller's to roll back); an unreachable database raises
      ``QueueUnavailable``.
    """

    def enqueue_within(self, connection: object, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Store ``jobs`` with ``connection``, in its open transaction; one outcome each."""
        ...

    def enqueue_batches_within(self, connection: object, items: Sequence[Job | Batch]) -> None:
        """Store ``items`` as ``BatchPort.enqueue_batches`` does (batches, chains), with
        ``connection``, in its open transaction."""
        ...


@runtime_checkable
class AsyncTransactionalEnqueue(Protocol):
    """``TransactionalEnqueue`` for event loops: the same promises, awaited, through the
    caller's asyncio connection (for PostgreSQL a psycopg 3 ``AsyncConnection``; anything else
    raises ``ConfigurationError`` naming what it takes)."""

    async def enqueue_within(self, connection: object, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Store ``jobs`` with ``connection``, in its open transaction; one outcome each."""
        ...

    async def enqueue_batches_within(
        self, connection: object, items: Sequence[Job | Batch]
    ) -> None:
        """Store ``items`` as ``AsyncBatchPort.enqueue_batches`` does (batches, chains), with
        ``connection``, in its open transaction."""
        ...
