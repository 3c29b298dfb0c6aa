"""Redis out of memory (used memory above ``maxmemory``, policy ``noeviction``) refuses every
write before it runs: an outage that passes once memory is freed, not a broken queue. The
producer is told the cause and the fix; a worker waits it out and leaves no queue out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import pytest

import foundry
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.pool.config import PoolConfig
from foundry.domain import Job, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix
from tests.pool_support import FAST, Harness
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def _raised(act: Callable[[], object]) -> BaseException:
    with pytest.raises(foundry.FoundryError) as raised:
        act()
    return raised.value


def test_a_write_refused_for_memory_is_an_outage_naming_the_cause_and_the_fix(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings = foundry.Settings(redis_url=server.url)

    async def enqueue_async() -> None:
        async with foundry.connect(settings) as fx:
            await fx.async_queue.enqueue(Job("task", id="a1"))

    with foundry.connect(settings) as fx:
        fx.queue.enqueue(Job("task", id="j0"))  # the library is loaded
        server.fill_past_maxmemory()
        refusals = [
            _raised(lambda: fx.queue.enqueue(Job("task", id="j1"))),
            _raised(lambda: fx.queue.claim(ClaimRequest(("default",), lease=LEASE))),
            _raised(lambda: fx.queue.pause("default")),
            _raised(lambda: fx.queue.resume("default")),
            _raised(lambda: asyncio.run(enqueue_async())),
        ]
        stored = server.client().hlen(b"foundry:{default}:jobs")
        server.client().config_set("maxmemory", "0")
        fx.queue.enqueue(Job("task", id="j1"))  # the same clients, once memory is freed
        [lease] = fx.queue.claim(ClaimRequest(("default",), lease=LEASE))

    assert stored == 1  # nothing of the refused writes
    assert lease.job_id == "j0"
    for refusal in refusals:
        assert isinstance(refusal, foundry.QueueUnavailable), refusal
        assert not isinstance(refusal, foundry.QueueBroken)  # a worker would leave it out
        assert "Redis is out of memory" in str(refusal)
        assert "Raise maxmemory" in str(refusal)
        assert "is broken" not in str(refusal)


def test_a_worker_waits_out_redis_out_of_memory_and_leaves_no_queue_out(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    client = connect(RedisSettings(url=server.url, retries=1, backoff_base=timedelta(0)))
    config = PoolConfig(queues=("c",), concurrency=1, idle_wait=FAST, cancel_check=None)
    pool = Harness(
        config,
        queue=lambda clock: RedisQueue(client, prefix=unique_prefix("oom"), clock=clock),  # type: ignore[arg-type,return-value]
    )
    queue = pool.queue
    queue.enqueue(Job("work", id="c0", queue="c"))
    server.fill_past_maxmemory()

    with caplog.at_level(logging.INFO, "foundry"):
        pool.start()
        pool.advance(5)
        broken = pool.sup._quarantine.broken(pool.now)
        refused = pool.sup.slots[0].job
        server.client().config_set("maxmemory", "0")
        pool.advance(5)
    record = queue.get("c0")

    assert broken == []
    assert refused is None
    assert "is broken" not in caplog.text
    assert "Redis is out of memory" in caplog.text
    assert pool.running(0) == "c0"
    assert record is not None
    assert record.state is JobState.ACTIVE


def test_a_library_reload_refused_for_memory_is_the_outage_and_loses_no_lease(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """Redis lost the library (a restart without persistence, FUNCTION FLUSH) while out of
    memory: the reload is refused like any write, so renew and complete report the outage
    (and are sent again once memory is freed), never a broken queue nor a lost lease."""
    server = redis_server_factory()
    client = connect(RedisSettings(url=server.url, retries=1, backoff_base=timedelta(0)))
    queue = RedisQueue(client, prefix=unique_prefix("oom"))  # type: ignore[arg-type]
    queue.enqueue(Job("task", id="j0"))
    [lease] = queue.claim(ClaimRequest(("default",), lease=LEASE))
    server.client().function_flush()
    server.fill_past_maxmemory()

    refusals = [
        _raised(lambda: queue.renew([lease], LEASE)),
        _raised(lambda: queue.complete_many([lease], [1])),
        _raised(lambda: queue.complete(lease, 1)),
    ]
    server.client().config_set("maxmemory", "0")
    [renewed] = queue.renew([lease], LEASE)

    for refusal in refusals:
        assert isinstance(refusal, foundry.QueueUnavailable), refusal
        assert not isinstance(refusal, foundry.QueueBroken)
        assert "Redis is out of memory" in str(refusal)
    assert renewed is not None
