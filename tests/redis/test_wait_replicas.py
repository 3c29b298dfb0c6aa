"""REDIS_WAIT_REPLICAS: an enqueue or a completion is acknowledged only once that many replicas
hold it; a replica that does not answer in time makes the write an error that names the
setting, and sending it again is safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

import foundry
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, WriteNotReplicated
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix
from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

WAIT_ONE = Durability(1, timeout=timedelta(milliseconds=300))
#: For the steps where the replica answers: a loaded machine may take longer than 300 ms.
WAIT_ONE_PATIENTLY = Durability(1, timeout=timedelta(seconds=10))


@pytest.fixture
def replicated(redis_server_factory: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    """A master and one replica in sync with it."""
    master = redis_server_factory()
    master.client().config_set("repl-diskless-sync-delay", 0)  # the first sync starts at once
    replica = redis_server_factory()
    replica.client().replicaof("127.0.0.1", master.port)
    deadline = time.monotonic() + 10
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.02)
    return master, replica


def _queue(master: RedisServer, durability: Durability, prefix: str | None = None) -> RedisQueue:
    client = connect(RedisSettings(url=master.url))
    return RedisQueue(client, prefix=prefix or unique_prefix("q"), durability=durability)


def test_a_replica_that_does_not_answer_makes_enqueue_and_complete_fail_naming_the_setting(
    replicated: tuple[RedisServer, RedisServer],
) -> None:
    master, replica = replicated
    prefix = unique_prefix("q")
    queue, plain = _queue(master, WAIT_ONE, prefix), _queue(master, Durability())
    patient = _queue(master, WAIT_ONE_PATIENTLY, prefix)
    patient.enqueue(Job("task", id="j1"))
    [lease] = patient.claim(ClaimRequest(("default",), lease=LEASE))

    replica.pause()
    try:
        plain.enqueue(Job("task"))  # without the setting nothing waits
        with pytest.raises(WriteNotReplicated, match="REDIS_WAIT_REPLICAS=1") as enqueueing:
            queue.enqueue(Job("task", id="j2"))
        with pytest.raises(WriteNotReplicated, match="held by 0 of 1 replica"):
            queue.complete(lease, "done")
    finally:
        replica.resume()

    assert "sending it again is safe" in str(enqueueing.value)
    assert str(enqueueing.value).startswith(
        "Redis took enqueue on the master, but it is held by 0 of 1 replica(s) after 0.3 s"
    )
    patient.enqueue(Job("task", id="j2"))  # sent again once the replica answers: acknowledged
    patient.complete(lease, "done")
    stats = patient.stats("default")
    assert (stats.ready, stats.completed) == (1, 1)  # j2 stored once, j1 completed once


def test_foundry_enqueue_with_more_replicas_than_redis_has_fails_naming_the_setting(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()  # no replica at all
    env = {"REDIS_URL": server.url, "REDIS_WAIT_REPLICAS": "1", "QUEUE_TIMEOUT": "3"}

    done = foundry_cli("enqueue", "task", "--id", "j1", env=env)
    again = foundry_cli("enqueue", "task", "--id", "j1", env={**env, "REDIS_WAIT_REPLICAS": "0"})

    assert done.returncode == 3, done.stderr
    assert "held by 0 of 1 replica(s) after 0.5 s (REDIS_WAIT_REPLICAS=1)" in done.stderr
    assert again.returncode == 0, again.stderr
    assert server.client().hlen(b"foundry:{default}:jobs") == 1


def test_the_asyncio_producer_waits_for_the_replicas_too(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()  # no replica at all
    settings = foundry.Settings(
        redis_url=server.url, redis_wait_replicas=1, queue_timeout=timedelta(seconds=3)
    )

    async def enqueue() -> None:
        async with foundry.connect(settings) as fx:
            await fx.async_queue.enqueue(Job("task", id="j1"))

    with pytest.raises(WriteNotReplicated, match=r"held by 0 of 1 replica\(s\) after 0.5 s"):
        asyncio.run(enqueue())
    assert server.client().hlen(b"foundry:{default}:jobs") == 1  # on the master all the same


def test_a_master_refusing_writes_for_want_of_replicas_is_an_outage_not_a_broken_queue(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    master = redis_server_factory()
    master.client().config_set("min-replicas-to-write", 1)  # and no replica
    settings = foundry.Settings(redis_url=master.url)

    async def enqueue_async() -> None:
        async with foundry.connect(settings) as fx:
            await fx.async_queue.enqueue(Job("task"))

    with foundry.connect(settings) as fx:
        refusals = [
            _raised(lambda: fx.queue.enqueue(Job("task"))),
            _raised(lambda: fx.queue.claim(ClaimRequest(("default",), lease=LEASE))),
            _raised(lambda: asyncio.run(enqueue_async())),
        ]
        master.client().config_set("min-replicas-to-write", 0)
        fx.queue.enqueue(Job("task", id="j1"))  # the same clients, once it takes writes again

    for refusal in refusals:
        assert isinstance(refusal, foundry.QueueUnavailable), refusal
        assert not isinstance(refusal, foundry.QueueBroken)  # a worker would leave it out
        assert "Redis refused" in str(refusal)
        assert "min-replicas-to-write" in str(refusal)


def _raised(act: Callable[[], object]) -> BaseException:
    with pytest.raises(foundry.FoundryError) as raised:
        act()
    return raised.value
