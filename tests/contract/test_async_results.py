"""``AsyncDispatcher.result`` on every queue backend: what ``Dispatcher.result`` answers,
awaited, woken by the completion rather than polling."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import Dead, ErrorInfo, JobFailed, JobNotFound, ResultTimeout
from foundry.ports import AsyncQueuePort, ClaimRequest
from tests.backends import LEASE, Queue, QueueBackend

registry = JobRegistry()


@registry.job(name="add")
def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture
def twin(
    queue_backend: QueueBackend, queue: Queue, clock: ManualClock, request: pytest.FixtureRequest
) -> AsyncQueuePort:
    return queue_backend.twin(request.getfixturevalue, clock, queue)


def test_result_waits_for_the_completion_made_elsewhere(
    queue: Queue, twin: AsyncQueuePort, clock: ManualClock
) -> None:
    dispatcher = AsyncDispatcher(twin, registry, clock)

    async def main() -> object:
        job_id = await dispatcher.dispatch(add, {"a": 2, "b": 3})
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        threading.Timer(0.2, queue.complete, (lease, 5)).start()
        try:
            return await dispatcher.result(job_id, timeout=30)
        finally:
            await twin.aclose()

    assert asyncio.run(main()) == 5


def test_result_raises_what_the_sync_result_raises(
    queue: Queue, twin: AsyncQueuePort, clock: ManualClock
) -> None:
    dispatcher = AsyncDispatcher(twin, registry, clock)

    async def main() -> list[type[BaseException]]:
        failed = await dispatcher.dispatch(add, {"a": 1, "b": 1})
        pending = await dispatcher.dispatch(add, {"a": 1, "b": 2}, queue="later")
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        queue.fail(lease, ErrorInfo("Boom", "no"), Dead("gave up"))
        raised = []
        for job_id, timeout in ((failed, 1), (pending, timedelta(milliseconds=50)), ("no", 1)):
            try:
                await dispatcher.result(job_id, timeout=timeout)
            except (JobFailed, ResultTimeout, JobNotFound) as error:
                raised.append(type(error))
        await twin.aclose()
        return raised

    assert asyncio.run(main()) == [JobFailed, ResultTimeout, JobNotFound]


def test_a_waiter_is_woken_by_its_job_while_many_others_wait_for_jobs_that_do_not_end(
    queue: Queue, twin: AsyncQueuePort, clock: ManualClock
) -> None:
    dispatcher = AsyncDispatcher(twin, registry, clock)

    async def main() -> object:
        idle = [await dispatcher.dispatch(add, {"a": n, "b": 0}, queue="idle") for n in range(8)]
        job_id = await dispatcher.dispatch(add, {"a": 2, "b": 3})
        waiting = [
            asyncio.create_task(dispatcher.result(i, timeout=120, queue="idle")) for i in idle
        ]
        wanted = asyncio.create_task(dispatcher.result(job_id, timeout=120))
        await asyncio.sleep(0.2)  # every waiter waits by now
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        queue.complete(lease, 5)
        try:
            return await asyncio.wait_for(wanted, 60)  # a bound for a failure, not a timing
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            await twin.aclose()

    assert asyncio.run(main()) == 5
