"""Dispatchers for the dispatch contract: the sync one, and the async one driven from a test.

``AwaitedDispatcher`` runs each call of an ``AsyncDispatcher`` to completion on one event loop
of its own, so one suite of plain tests holds both dispatchers to the same promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar, cast

from foundry.adapters.clock import ManualClock
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.batches import Step
from foundry.application.dispatcher import Dispatcher
from foundry.application.job_maker import Item
from foundry.application.registry import JobRegistry
from foundry.domain import Batch, Job, JobState
from foundry.ports import AsyncBatchPort, AsyncQueuePort, BatchPort, BatchRecord
from tests.backends import FixtureLookup, Queue, QueueBackend

T = TypeVar("T")

#: Which dispatcher a contract test drives.
KINDS = ("sync", "async")


class AwaitedDispatcher:
    """``Dispatcher``'s methods over an ``AsyncDispatcher``, each awaited on ``runner``."""

    def __init__(
        self, dispatcher: AsyncDispatcher, queue: AsyncQueuePort, runner: asyncio.Runner
    ) -> None:
        self._dispatcher = dispatcher
        self._queue = queue
        self._runner = runner
        self.build = dispatcher.build
        self.build_batch = dispatcher.build_batch

    def dispatch(self, *args: Any, **options: Any) -> str:
        """``AsyncDispatcher.dispatch``, run to completion."""
        return self._run(self._dispatcher.dispatch(*args, **options))

    def dispatch_many(self, items: Iterable[Item]) -> list[str]:
        """``AsyncDispatcher.dispatch_many``, run to completion."""
        return self._run(self._dispatcher.dispatch_many(items))

    def chain(self, steps: Iterable[Item | Job | Batch], **options: Any) -> list[str]:
        """``AsyncDispatcher.chain``, run to completion."""
        return self._run(self._dispatcher.chain(steps, **options))

    def batch(self, jobs: Iterable[Step], **options: Any) -> str:
        """``AsyncDispatcher.batch``, run to completion."""
        return self._run(self._dispatcher.batch(jobs, **options))

    def batch_record(self, batch_id: str, **options: Any) -> BatchRecord:
        """``AsyncDispatcher.batch_record``, run to completion."""
        return self._run(self._dispatcher.batch_record(batch_id, **options))

    def cancel_batch(self, batch_id: str, **options: Any) -> BatchRecord:
        """``AsyncDispatcher.cancel_batch``, run to completion."""
        return self._run(self._dispatcher.cancel_batch(batch_id, **options))

    def cancel(self, job_id: str, **options: Any) -> JobState:
        """``AsyncDispatcher.cancel``, run to completion."""
        return self._run(self._dispatcher.cancel(job_id, **options))

    def result(self, job_id: str, timeout: float | None = None, **options: Any) -> Any:
        """``AsyncDispatcher.result``, run to completion."""
        return self._run(self._dispatcher.result(job_id, timeout, **options))

    def batch_results(self, batch_id: str, timeout: float | None = None, **options: Any) -> Any:
        """``AsyncDispatcher.batch_results``, run to completion."""
        return self._run(self._dispatcher.batch_results(batch_id, timeout, **options))

    def close(self) -> None:
        """Close the async queue's connection on its loop, then the loop."""
        self._runner.run(self._queue.aclose())
        self._runner.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(call)


AnyDispatcher = Dispatcher | AwaitedDispatcher


class Dispatchers:
    """Builds dispatchers of one ``kind`` over a backend's queues, and closes them."""

    def __init__(self, kind: str, fixture: FixtureLookup, clock: ManualClock) -> None:
        self._kind = kind
        self._fixture = fixture
        self._clock = clock
        self._opened: list[AwaitedDispatcher] = []

    def over(
        self, backend: QueueBackend, queue: Queue, registry: JobRegistry, **options: Any
    ) -> AnyDispatcher:
        """A dispatcher for ``registry`` over ``queue`` (and its batches, if it keeps them)."""
        if self._kind == "sync":
            batches = cast(BatchPort, queue) if backend.batches else None
            return Dispatcher(queue, registry, self._clock, batches=batches, **options)
        twin = backend.twin(self._fixture, self._clock, queue)
        kept = cast(AsyncBatchPort, twin) if backend.batches else None
        made = AsyncDispatcher(twin, registry, self._clock, batches=kept, **options)
        awaited = AwaitedDispatcher(made, twin, asyncio.Runner())
        self._opened.append(awaited)
        return awaited

    def close(self) -> None:
        """Close every async dispatcher built."""
        for awaited in self._opened:
            awaited.close()
