"""A batch the previous release stored on Redis (no ``cbof`` entries for its callbacks: the
protection of a pending callback's id came later) still ends, fires its callbacks once, and
is shown and waited for like any other."""

from __future__ import annotations

import asyncio

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.domain import InvalidJob, Job
from foundry.ports import AsyncBatchPort
from tests.backends import QUEUE_BACKENDS, BatchQueue, FixtureLookup, unique_prefix
from tests.batch_upgrade_support import (
    check_a_cancel_ends_it,
    check_it_ended_and_every_view_answers,
    old_batch,
    registry,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def old_queue(request: pytest.FixtureRequest, redis_url: str, clock: ManualClock) -> RedisQueue:
    """A queue holding batch ``old`` as the previous release wrote it: the ``batch``
    function's keys, without the ``cbof`` hash that names its pending callbacks."""
    prefix = unique_prefix("upgrade")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue_batches([old_batch()])
    client = redis.Redis.from_url(redis_url)
    assert client.delete(f"{prefix}:{{album}}:cbof") == 1
    client.close()
    return queue


def test_a_batch_stored_without_its_callbacks_ids_ends_and_runs_its_callbacks(
    old_queue: RedisQueue, clock: ManualClock
) -> None:
    check_it_ended_and_every_view_answers(old_queue, clock)


def test_the_results_of_a_batch_stored_without_its_callbacks_ids_come_in_its_order(
    old_queue: RedisQueue, clock: ManualClock, request: pytest.FixtureRequest
) -> None:
    check_it_ended_and_every_view_answers(old_queue, clock)
    dispatcher = Dispatcher(old_queue, registry, clock, batches=old_queue)

    assert dispatcher.batch_results("old", timeout=0) == [0, 1, 2]
    assert asyncio.run(_awaited(request.getfixturevalue, old_queue, clock)) == [0, 1, 2]


async def _awaited(fixture: FixtureLookup, queue: BatchQueue, clock: ManualClock) -> list[int]:
    twin = QUEUE_BACKENDS["redis"].twin(fixture, clock, queue)
    try:
        dispatcher = AsyncDispatcher(twin, registry, clock, batches=_batches(twin))
        return await dispatcher.batch_results("old", timeout=0)
    finally:
        await twin.aclose()


def _batches(twin: object) -> AsyncBatchPort:
    assert isinstance(twin, AsyncBatchPort)
    return twin


def test_a_cancel_of_a_batch_stored_the_old_way_fires_finally_alone(
    old_queue: RedisQueue, clock: ManualClock
) -> None:
    check_a_cancel_ends_it(old_queue, clock)


def test_the_first_reap_since_the_upgrade_protects_an_old_batchs_pending_callbacks(
    old_queue: RedisQueue, clock: ManualClock
) -> None:
    old_queue.reap()

    with pytest.raises(InvalidJob, match=r"'old.then' is the then callback of batch 'old'"):
        old_queue.enqueue(Job("other", id="old.then", queue="album"))
    with pytest.raises(InvalidJob, match=r"'old.finally' is the finally callback of batch 'old'"):
        old_queue.enqueue_many([Job("other", id="old.finally", queue="album", priority=1)])
    check_it_ended_and_every_view_answers(old_queue, clock)
