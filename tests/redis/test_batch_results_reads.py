"""Waiting for a batch on Redis reads its ended members together: the commands the server
sees do not grow with the batch's size (one pipelined read per wake), with either dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
import redis.asyncio

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.async_queue import AsyncRedisQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.ports import ClaimRequest
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

registry = JobRegistry()
MEMBERS = 300


@registry.job(name="double", queue="math")
def double(n: int) -> int:
    return 2 * n


def _commands(client: redis.Redis) -> int:
    """How many commands the server has run (``INFO commandstats``, summed)."""
    stats = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


def _ended_batch(queue: RedisQueue, clock: ManualClock) -> str:
    """A batch of ``MEMBERS`` jobs, every one completed (its result twice its ``n``)."""
    dispatcher = Dispatcher(queue, registry, clock, batches=queue)
    batch_id = dispatcher.batch([(double, {"n": n}) for n in range(MEMBERS)])
    request = ClaimRequest(["math"], lease=timedelta(seconds=30), limit=100)
    while leases := queue.claim(request):
        queue.complete_many(leases, [2 * lease.job.payload["n"] for lease in leases])
    return batch_id


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_results_of_an_ended_batch_take_a_few_commands_whatever_its_size(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock, kind: str
) -> None:
    server = redis_server_factory()
    client = redis.Redis.from_url(server.url)
    queue = RedisQueue(client, clock=clock)
    batch_id = _ended_batch(queue, clock)

    before = _commands(client)
    if kind == "sync":
        results = Dispatcher(queue, registry, clock, batches=queue).batch_results(batch_id, 0)
    else:
        results = asyncio.run(_results_awaited(server.url, clock, batch_id))
    sent = _commands(client) - before

    assert results == [2 * n for n in range(MEMBERS)]
    assert sent < 20  # one read each of the batch and its members, then one of the records
    client.close()


async def _results_awaited(url: str, clock: ManualClock, batch_id: str) -> list[int]:
    queue = AsyncRedisQueue(redis.asyncio.Redis.from_url(url), clock=clock)
    try:
        dispatcher = AsyncDispatcher(queue, registry, clock, batches=queue)
        return await dispatcher.batch_results(batch_id, 0)
    finally:
        await queue.aclose()
