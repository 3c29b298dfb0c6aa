"""Redis Cluster with a replica per master: REDIS_WAIT_REPLICAS waits for the replica of the
master that took each write, and foundry check names the masters whose settings a failover or
memory pressure may lose jobs on."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis.crc import key_slot

import foundry
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, WriteNotReplicated
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix
from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup

pytestmark = pytest.mark.redis

WAIT_ONE = Durability(1, timeout=timedelta(milliseconds=300))
#: For the steps where the replica answers: a loaded machine may take longer than 300 ms.
WAIT_ONE_PATIENTLY = Durability(1, timeout=timedelta(seconds=10))
HELD_BY_NONE = r"held by 0 of 1 replica\(s\)"


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[RedisClusterGroup]:
    """Three masters with a replica each; the tests pause replicas but kill nothing."""
    group = RedisClusterGroup(replicas=1)
    try:
        yield group
    finally:
        group.close()


def _replica_of_queue(group: RedisClusterGroup, queue: str) -> RedisServer:
    return group.replica_of(group.owner(key_slot(queue.encode())))


def test_an_enqueue_and_a_completion_wait_for_the_replica_of_their_master(
    replicated_cluster: RedisClusterGroup,
) -> None:
    prefix = unique_prefix("q")
    client = connect(RedisSettings(url=replicated_cluster.url()))
    hasty = RedisQueue(client, prefix=prefix, durability=WAIT_ONE)
    patient = RedisQueue(client, prefix=prefix, durability=WAIT_ONE_PATIENTLY)
    patient.enqueue(Job("task", id="j1", queue="orders"))
    [lease] = patient.claim(ClaimRequest(("orders",), lease=LEASE))
    replica = _replica_of_queue(replicated_cluster, "orders")

    replica.pause()  # only this one: a WAIT sent to any other master would be answered
    try:
        with pytest.raises(WriteNotReplicated, match=HELD_BY_NONE):
            hasty.enqueue(Job("task", id="j2", queue="orders"))
        with pytest.raises(WriteNotReplicated, match=HELD_BY_NONE):
            hasty.complete(lease, "done")
    finally:
        replica.resume()

    patient.enqueue(Job("task", id="j2", queue="orders"))  # sent again: stored once
    patient.complete(lease, "done")
    stats = patient.stats("orders")
    assert (stats.ready, stats.completed) == (1, 1)


def test_the_asyncio_producer_waits_for_the_replica_of_the_jobs_master(
    replicated_cluster: RedisClusterGroup,
) -> None:
    prefix = unique_prefix("q")
    settings = foundry.Settings(
        redis_url=replicated_cluster.url(), redis_wait_replicas=1, queue_prefix=prefix
    )
    replica = _replica_of_queue(replicated_cluster, "orders")

    async def enqueue(job_id: str) -> None:
        async with foundry.connect(settings) as fx:
            await fx.async_queue.enqueue(Job("task", id=job_id, queue="orders"))

    replica.pause()
    try:
        with pytest.raises(WriteNotReplicated, match=HELD_BY_NONE):
            asyncio.run(enqueue("j1"))
    finally:
        replica.resume()
    asyncio.run(enqueue("j1"))
    asyncio.run(enqueue("j2"))

    with replica.client() as copy:  # the WAIT answered: the replica holds both already
        copy.execute_command("READONLY")  # a replica's keys, not a MOVED to its master
        assert copy.hlen(f"{prefix}:{{orders}}:jobs") == 2


def test_wait_replicas_on_a_cluster_without_replicas_fails_naming_the_setting(
    redis_cluster: RedisClusterGroup,
) -> None:
    env = {"REDIS_URL": redis_cluster.url(), "REDIS_WAIT_REPLICAS": "1", "QUEUE_TIMEOUT": "3"}
    env["QUEUE_PREFIX"] = unique_prefix("q")

    done = foundry_cli("enqueue", "task", "--id", "j1", env=env)

    assert done.returncode == 3, done.stderr
    assert "held by 0 of 1 replica(s) after 0.5 s (REDIS_WAIT_REPLICAS=1)" in done.stderr


def test_check_names_the_masters_whose_settings_risk_jobs(
    replicated_cluster: RedisClusterGroup,
) -> None:
    env = {"REDIS_URL": replicated_cluster.url(), "COLUMNS": "300"}
    masters = [replicated_cluster.owner(slot) for slot in (0, 8000, 16383)]
    guarded, evicting = masters[0], masters[1]
    with guarded.client() as one, evicting.client() as other:
        one.config_set("min-replicas-to-write", 1)
        other.config_set("maxmemory-policy", "allkeys-lru")
    try:
        done = foundry_cli("check", env=env)
        strict = foundry_cli("check", "--strict", env=env)
    finally:
        with guarded.client() as one, evicting.client() as other:
            one.config_set("min-replicas-to-write", 0)
            other.config_set("maxmemory-policy", "noeviction")

    assert done.returncode == 0, done.stderr
    unguarded = _ports_named(done.stderr, "min-replicas-to-write is 0")
    assert unguarded == {master.port for master in masters[1:]}
    assert _ports_named(done.stderr, "maxmemory-policy is 'allkeys-lru'") == {evicting.port}
    assert "have no replica" not in done.stderr
    assert strict.returncode == 1
    assert "min-replicas-to-write 1" in strict.stderr
    assert "maxmemory-policy noeviction" in strict.stderr


def _ports_named(text: str, warning: str) -> set[int]:
    """The ports of the nodes the one line of ``text`` holding ``warning`` names."""
    [line] = [line for line in text.splitlines() if warning in line]
    return {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", line)}
