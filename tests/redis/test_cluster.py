"""Redis Cluster: Foundry spreads queues and cache keys over the masters, loads its library on
each, claims over queues that live on different masters, and says what is wrong with a cluster
it cannot use (uncovered slots, a refused password) with the fix."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from redis.crc import key_slot

import foundry
from foundry.adapters.redis import cluster
from foundry.adapters.redis.async_queue import AsyncRedisQueue
from foundry.adapters.redis.connection import (
    RedisSettings,
    connect,
    connect_async,
    describe,
    mask_url,
)
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job
from foundry.ports import ClaimRequest, Enqueued
from tests.backends import redis_cache, unique_prefix
from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup, lone_cluster_node

pytestmark = pytest.mark.redis

LEASE = timedelta(seconds=30)


def test_a_cluster_url_names_its_nodes_login_and_tls() -> None:
    target = cluster.parse(
        "rediss+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2?ssl_cert_reqs=none"
    )

    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379))
    assert (target.tls, target.username, target.password) == (True, "app", "s:cret")
    assert target.options == (("ssl_cert_reqs", "none"),)
    assert "s%3Acret" not in mask_url("redis+cluster://app:s%3Acret@10.0.0.1:7000")


@pytest.mark.parametrize("path", ["", "/", "/0"])
def test_a_cluster_url_takes_a_path_in_its_query(path: str) -> None:
    url = f"rediss+cluster://10.0.0.1:7000{path}?ssl_ca_certs=/etc/ssl/ca.pem"

    target = cluster.parse(RedisSettings(url=url).url)

    assert target.nodes == (("10.0.0.1", 7000),)
    assert target.options == (("ssl_ca_certs", "/etc/ssl/ca.pem"),)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://10.0.0.1:7000/3", "only database 0"),
        ("redis+cluster://10.0.0.1:7000?db=2", "only database 0"),
        ("redis+cluster://10.0.0.1:70x0", "give each cluster node as host:port"),
        ("redis+cluster://", "give each cluster node as host:port"),
        ("redis+cluster://10.0.0.1:7000?ssl_ca_certs=/ca.pem", r"use rediss\+cluster://"),
        ("redis://10.0.0.1:6379/0?ssl_ca_certs=/ca.pem", "ssl_ca_certs= is an option of TLS"),
    ],
)
def test_a_cluster_url_that_cannot_work_is_a_configuration_error(url: str, says: str) -> None:
    with pytest.raises(foundry.ConfigurationError, match=says):
        RedisSettings(url=url)


def test_a_database_number_is_refused_on_a_cluster(redis_cluster: RedisClusterGroup) -> None:
    settings = foundry.Settings(redis_url=redis_cluster.url(), redis_queue_db=2)

    with pytest.raises(foundry.ConfigurationError, match="only database 0: unset it"):
        foundry.connect(settings).queue.stats("default")


def test_queues_and_cache_keys_spread_over_every_master(redis_cluster: RedisClusterGroup) -> None:
    prefix = unique_prefix("q")
    queue = RedisQueue(connect(RedisSettings(url=redis_cluster.url())), prefix=prefix)
    cache = redis_cache(redis_cluster.url(), None)
    names = [f"q{i}" for i in range(24)]

    queue.enqueue_many([foundry.Job("task", queue=name) for name in names])
    cache.set_many({f"k{i}": i for i in range(200)})
    assert cache.get_many([f"k{i}" for i in range(200)]) == {f"k{i}": i for i in range(200)}

    for node in redis_cluster.nodes:
        with node.client() as probe:
            assert list(probe.scan_iter(match=f"{prefix}:*:jobs", count=1000))
            assert list(probe.scan_iter(match=f"{cache._c.prefix}:*:v:*", count=1000))
    assert sum(queue.stats(name).ready for name in names) == 24
    assert cache.stats().hits == 200  # counted in each bucket's hash, added up


def test_the_library_is_loaded_on_each_master_that_lacks_it(
    redis_cluster: RedisClusterGroup,
) -> None:
    queue = RedisQueue(connect(RedisSettings(url=redis_cluster.url())), prefix=unique_prefix("q"))
    names = _queues_on_every_master(redis_cluster)
    queue.enqueue(foundry.Job("warm-up", queue=names[0]))
    for node in redis_cluster.nodes:  # as after a restart without persistence
        with node.client() as probe:
            probe.execute_command("FUNCTION", "FLUSH")

    queue.enqueue_many([foundry.Job("task", queue=name) for name in names])
    leases = queue.claim(ClaimRequest(tuple(names), lease=LEASE, limit=10))

    assert sorted(lease.job.queue for lease in leases) == sorted([*names, names[0]])
    for node in redis_cluster.nodes:
        with node.client() as probe:
            assert probe.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "foundry_*")


def test_a_claim_waiting_on_queues_of_several_masters_takes_a_job_of_the_last(
    redis_cluster: RedisClusterGroup,
) -> None:
    queue = RedisQueue(connect(RedisSettings(url=redis_cluster.url())), prefix=unique_prefix("q"))
    names = _queues_on_every_master(redis_cluster)
    claimed: list[foundry.Lease] = []
    waiting = threading.Thread(
        target=lambda: claimed.extend(
            queue.claim(ClaimRequest(tuple(names), lease=LEASE, wait=timedelta(seconds=60)))
        )
    )

    waiting.start()
    job = foundry.Job("late", queue=names[-1])
    queue.enqueue(job)
    waiting.join(timeout=90)

    assert [lease.job.id for lease in claimed] == [job.id]


def test_check_reports_the_cluster_nodes_and_slot_coverage(
    redis_cluster: RedisClusterGroup,
) -> None:
    env = {"REDIS_URL": redis_cluster.url(), "COLUMNS": "300"}

    done = foundry_cli("check", env=env)
    strict = foundry_cli("check", "--strict", env=env)

    assert done.returncode == 0, done.stderr
    assert "Redis Cluster: 3 masters, 0 replicas, 16384/16384 slots served, state ok" in (
        done.stdout
    )
    assert "3 of 3 masters have no replica" in done.stderr
    assert strict.returncode == 1
    assert "a replica per cluster master" in strict.stderr


def test_a_cluster_with_uncovered_slots_is_exit_3_naming_the_fix() -> None:
    node = lone_cluster_node(last_slot=9999)
    try:
        done = foundry_cli("check", env={"REDIS_URL": f"redis+cluster://127.0.0.1:{node.port}"})
    finally:
        node.close()

    assert done.returncode == 3, done.stderr
    assert "redis-cli --cluster fix" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_password_the_cluster_refuses_is_exit_2_without_showing_it() -> None:
    node = lone_cluster_node(password="right-word")
    try:
        url = f"redis+cluster://:wrong-word@127.0.0.1:{node.port}"
        done = foundry_cli("check", env={"REDIS_URL": url})
        right = connect(RedisSettings(url=f"redis+cluster://:right-word@127.0.0.1:{node.port}"))
        assert right.ping()
        assert describe(right) == f"redis+cluster://:********@127.0.0.1:{node.port}"
    finally:
        node.close()

    assert done.returncode == 2, done.stderr
    assert "authentication failed" in done.stderr
    assert "wrong-word" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cluster_nobody_runs_is_an_outage() -> None:
    with pytest.raises(foundry.QueueUnavailable, match="cannot be used") as raised:
        connect(RedisSettings(url="redis+cluster://127.0.0.1:1", retries=1))

    assert not isinstance(raised.value, foundry.ConfigurationError)
    assert isinstance(raised.value.__cause__, redis.cluster.RedisClusterException)


def _queues_on_every_master(group: RedisClusterGroup) -> list[str]:
    """Queue names whose slots lie on different masters, one per master, in node order."""
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"queue-{i}"
        port = group.owner(key_slot(name.encode())).port
        found.setdefault(port, name)
        if len(found) == len(group.nodes):
            break
    return [found[node.port] for node in group.nodes]


def test_stats_with_a_master_down_shows_the_queues_it_reads_and_exits_3_naming_the_rest() -> None:
    group = RedisClusterGroup()  # its own: one of its masters dies
    try:
        for node in group.nodes:  # the others keep serving their slots, however long it is down
            with node.client() as probe:
                probe.config_set("cluster-require-full-coverage", "no")
        names = _queues_on_every_master(group)
        prefix = unique_prefix("q")
        queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=prefix)
        for name in names:
            queue.enqueue(foundry.Job("noop", queue=name))
        registries = {group.owner(key_slot(tag)) for tag in (b"registry", b"workers")}
        down = next(
            name for name in names if group.owner(key_slot(name.encode())) not in registries
        )
        group.kill(group.owner(key_slot(down.encode())))
        env = {"REDIS_URL": group.url(), "QUEUE_PREFIX": prefix}
        done = foundry_cli("stats", "--json", env=env)
    finally:
        group.close()

    assert done.returncode == 3, done.stderr
    shown = {row["queue"]: row for row in json.loads(done.stdout)["queues"]}
    assert [shown[name]["ready"] for name in names if name != down] == [1, 1]
    assert "Connection refused" in shown[down]["unreachable"]
    assert f"queue {down!r} is unreachable" in done.stderr


def test_the_queue_follows_a_failover_to_the_replica_of_its_master() -> None:
    group = RedisClusterGroup(replicas=1)  # its own: one of its masters dies
    try:
        queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=unique_prefix("q"))
        before = foundry.Job("before", queue="orders")
        queue.enqueue(before)
        master = group.owner(key_slot(b"orders"))
        with master.client() as probe:
            assert probe.wait(1, 5_000) == 1  # replicated: this test is not about the lag

        group.kill(master)
        after = foundry.Job("after", queue="orders")
        _retry_until_served(lambda: queue.enqueue(after))
        leases = queue.claim(ClaimRequest(("orders",), lease=LEASE, limit=10))
        group.wait_until_ok()  # the node asked below may not have heard of the promotion yet
        promoted = group.owner(key_slot(b"orders"))
    finally:
        group.close()

    assert promoted is not master
    assert sorted(lease.job.id for lease in leases) == sorted([before.id, after.id])


def test_a_call_to_a_dead_master_is_sent_again_until_its_replica_takes_over() -> None:
    group = RedisClusterGroup(replicas=1)  # its own: one of its masters dies
    try:
        queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=unique_prefix("q"))
        queue.enqueue(foundry.Job("before", queue="orders"))  # the queue knows the slot map
        master = group.owner(key_slot(b"orders"))
        replica = group.replica_of(master)
        group.kill(master)
        takeover = threading.Timer(0.3, _take_over, (replica,))
        takeover.start()

        after = foundry.Job("after", queue="orders")
        sent = queue.enqueue(after)  # the master is gone for 0.3 s: retried, not refused
        takeover.join()
    finally:
        group.close()

    assert sent == Enqueued(after.id)


def _take_over(replica: RedisServer) -> None:
    """Promote ``replica`` now, without the other masters' agreement (its master is dead)."""
    with replica.client() as probe:
        probe.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")


def _retry_until_served(write: Callable[[], object], patience: float = 60) -> None:
    """``write`` again while the cluster fails over (an outage to the queue), at most
    ``patience`` seconds."""
    give_up = time.monotonic() + patience
    while True:
        try:
            write()
            return
        except foundry.QueueUnavailable:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


def test_pool_size_caps_each_masters_pool_and_threads_wait_for_a_connection(
    redis_cluster: RedisClusterGroup,
) -> None:
    name = unique_prefix("pool")
    client = connect(RedisSettings(url=redis_cluster.url(), pool_size=2, client_name=name))
    key = f"{name}:{{pool}}:list"
    ready = threading.Barrier(6)
    answers: list[object] = []

    def block_briefly() -> None:
        ready.wait()
        answers.append(client.blpop([key], timeout=0.2))  # holds a connection 0.2 s

    threads = [threading.Thread(target=block_briefly) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers == [None] * 6  # every thread had its turn: none was refused
    with redis_cluster.owner(key_slot(key.encode())).client() as probe:
        opened = [c for c in probe.client_list() if c["name"] == name]
    assert len(opened) == 2


def test_the_async_client_keeps_to_pool_size_and_calls_beyond_it_wait_their_turn(
    redis_cluster: RedisClusterGroup,
) -> None:
    name = unique_prefix("apool")
    client = connect_async(RedisSettings(url=redis_cluster.url(), pool_size=2, client_name=name))
    aqueue = AsyncRedisQueue(client, prefix=name)
    jobs = [Job("t", id=f"j{n}", queue="pool") for n in range(40)]

    async def main() -> list[object]:
        outcomes = await asyncio.gather(*(aqueue.enqueue(job) for job in jobs))
        records = await asyncio.gather(*(aqueue.get(job.id, "pool") for job in jobs))
        await aqueue.aclose()
        await client.aclose()
        return [*outcomes, *(record.job.id for record in records if record)]

    assert asyncio.run(main()) == [Enqueued(job.id) for job in jobs] + [job.id for job in jobs]
