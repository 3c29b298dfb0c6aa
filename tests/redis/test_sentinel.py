"""Redis behind Sentinel: Foundry works on the master the sentinels name, and a URL no retry
can fix (a master no sentinel knows, a refused password) is said at once with the fix."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
import redis

import foundry
from foundry.adapters.redis.connection import RedisSettings, connect, describe
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.following import FOLLOW_S
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.registry import JobRegistry
from foundry.ports import ClaimRequest
from tests.backends import LEASE, redis_cache, unique_prefix
from tests.faults.proxy import FaultProxy
from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import free_port
from tests.redis_topologies import SentinelGroup

pytestmark = pytest.mark.redis


def test_queue_and_cache_write_to_the_master_the_sentinels_name(
    redis_sentinel: SentinelGroup,
) -> None:
    prefix = unique_prefix("q")
    settings = foundry.Settings(redis_url=redis_sentinel.url(), queue_prefix=prefix)
    cache = redis_cache(redis_sentinel.url(), None)

    with foundry.connect(settings) as fx:
        fx.queue.enqueue(foundry.Job("task"))
    cache.set("k", 1)

    master, replica = redis_sentinel.master.client(), redis_sentinel.replica.client()
    assert master.exists(f"{prefix}:{{default}}:jobs", f"{cache._c.prefix}:v:k") == 2
    assert master.wait(1, 5_000) == 1
    assert replica.exists(f"{prefix}:{{default}}:jobs", f"{cache._c.prefix}:v:k") == 2


def test_queue_and_cache_follow_the_master_when_sentinel_fails_over() -> None:
    group = SentinelGroup()  # its own: the session's group keeps its master
    try:
        queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=unique_prefix("q"))
        cache = redis_cache(group.url(), None)
        queue.enqueue(foundry.Job("before"))
        cache.set("k", 1)
        assert group.master.client().wait(1, 5_000) == 1  # replicated: this test is not on lag

        group.fail_over()
        group.kill(group.master)  # the connections still open to it fail; none may land there

        queue.enqueue(foundry.Job("after"))
        cache.set("k", 2)
        assert queue.stats("default").ready == 2
        assert cache.get("k") == 2
        assert group.replica.client().info("replication")["role"] == "master"
    finally:
        group.close()


def test_writes_follow_a_manual_failover_while_the_old_master_still_takes_them() -> None:
    group = SentinelGroup()  # its own: the session's group changes its master
    try:
        prefix = unique_prefix("q")
        settings = foundry.Settings(redis_url=group.url(), queue_prefix=prefix)
        cache = redis_cache(group.url(), None)
        with foundry.connect(settings) as fx:
            fx.queue.enqueue(foundry.Job("before"))
            cache.set("k", 1)
            # The old master stays a master, taking what is sent to it, until the sentinels
            # demote it some ten seconds later and it drops it all to copy the new one.
            group.fail_over()
            time.sleep(FOLLOW_S)

            after = fx.queue.enqueue(foundry.Job("after"))
            cache.set("k", 2)

            old_role = group.master.client().info("replication")["role"]
            new_master = group.replica.client()
            stored = new_master.hexists(f"{prefix}:{{default}}:jobs", after.job_id)
            cached = cache.get("k")
            value_on_new_master = new_master.exists(f"{cache._c.prefix}:v:k")
    finally:
        group.close()

    assert old_role == "master"  # the writes could have landed there, to be lost
    assert stored
    assert cached == 2
    assert value_on_new_master


def test_sentinels_that_stop_answering_hold_calls_up_once_not_every_second(
    redis_sentinel: SentinelGroup,
) -> None:
    proxies = [FaultProxy(sentinel.port).start() for sentinel in redis_sentinel.sentinels]
    hosts = ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
    timeout = timedelta(seconds=0.3)  # each silent sentinel holds an ask up this long
    client = connect(
        RedisSettings(url=f"redis+sentinel://{hosts}/foundry-test/0", socket_timeout=timeout)
    )
    queue = RedisQueue(client, prefix=unique_prefix("q"))
    try:
        queue.enqueue(foundry.Job("first"))
        for proxy in proxies:
            proxy.drop_replies = True  # the master answers; the sentinels, no longer

        held_up, calls, give_up = 0, 0, time.monotonic() + 3
        while time.monotonic() < give_up:
            started = time.monotonic()
            queue.enqueue(foundry.Job("task"))
            held_up += time.monotonic() - started > 0.5
            calls += 1
    finally:
        for proxy in proxies:
            proxy.close()

    assert held_up == 1, (held_up, calls)  # the first ask after the silence, then rarely


def test_the_asyncio_producer_follows_a_manual_failover() -> None:
    group = SentinelGroup()  # its own: the session's group changes its master
    prefix = unique_prefix("q")
    settings = foundry.Settings(redis_url=group.url(), queue_prefix=prefix)

    async def enqueue_across_the_failover() -> str:
        async with foundry.connect(settings) as fx:
            await fx.async_queue.enqueue(foundry.Job("before"))  # its connection is open
            await asyncio.to_thread(group.fail_over)
            await asyncio.sleep(FOLLOW_S)
            return (await fx.async_queue.enqueue(foundry.Job("after"))).job_id

    try:
        after = asyncio.run(enqueue_across_the_failover())
        old_role = group.master.client().info("replication")["role"]
        stored = group.replica.client().hexists(f"{prefix}:{{default}}:jobs", after)
    finally:
        group.close()

    assert old_role == "master"  # the write could have landed there, to be lost
    assert stored


def test_result_waits_outlast_the_failover_of_a_killed_master() -> None:
    group = SentinelGroup()  # its own: its master dies
    settings = foundry.Settings(redis_url=group.url(), queue_prefix=unique_prefix("q"))
    results: dict[str, object] = {}

    def wait(fx: foundry.Connection) -> None:
        try:
            results["sync"] = fx.dispatcher(JobRegistry()).result("j1", timeout=30)
        except foundry.FoundryError as error:
            results["sync"] = error

    async def wait_async() -> None:
        async with foundry.connect(settings) as fx:
            try:
                results["async"] = await fx.async_dispatcher(JobRegistry()).result("j1", 30)
            except foundry.FoundryError as error:
                results["async"] = error

    try:
        with foundry.connect(settings) as fx:
            fx.queue.enqueue(foundry.Job("task", id="j1"))
            assert group.master.client().wait(1, 5_000) == 1  # the replica holds the job
            waiters = [
                threading.Thread(target=wait, args=(fx,)),
                threading.Thread(target=asyncio.run, args=(wait_async(),)),
            ]
            for waiter in waiters:
                waiter.start()
            time.sleep(0.2)  # both are blocked on the master's notification list

            group.kill(group.master)
            group.wait_for_promotion()
            [lease] = fx.queue.claim(ClaimRequest(("default",), lease=LEASE))
            fx.queue.complete(lease, result=42)
            for waiter in waiters:
                waiter.join(timeout=30)
    finally:
        group.close()

    assert results == {"sync": 42, "async": 42}


def test_a_master_no_sentinel_knows_is_exit_2_naming_the_known_ones(
    redis_sentinel: SentinelGroup,
) -> None:
    # The check reaches the sentinels through proxies that count its connections alone (the
    # sentinels' own counters also count their links to each other, which they open again
    # whenever a loaded machine makes one time out).
    proxies = [FaultProxy(sentinel.port).start() for sentinel in redis_sentinel.sentinels]
    hosts = ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
    try:
        done = foundry_cli("check", env={"REDIS_URL": f"redis+sentinel://{hosts}/orders/0"})
    finally:
        for proxy in proxies:
            proxy.close()

    assert done.returncode == 2, done.stderr
    assert "no sentinel monitors a master named 'orders'" in done.stderr
    assert "they monitor: foundry-test" in done.stderr
    assert "Traceback" not in done.stderr
    # One connection to each sentinel: no retries first.
    assert [proxy.accepted for proxy in proxies] == [1] * len(proxies)


def test_a_password_the_master_refuses_is_a_configuration_error(
    redis_sentinel: SentinelGroup,
) -> None:
    settings = foundry.Settings(redis_url=redis_sentinel.url(login="nobody:wrong-word@"))

    with (
        foundry.connect(settings) as fx,
        pytest.raises(foundry.ConfigurationError, match="authentication failed") as raised,
    ):
        fx.queue.stats("default")

    assert "wrong-word" not in str(raised.value)


def test_a_password_a_sentinel_refuses_names_the_query_option(
    redis_sentinel: SentinelGroup,
) -> None:
    url = f"{redis_sentinel.url()}?sentinel_username=nobody&sentinel_password=wrong-word"

    with pytest.raises(redis.ConnectionError, match="sentinel_password=") as raised:
        connect(RedisSettings(url=url)).ping()

    assert "wrong-word" not in str(raised.value)


def test_sentinels_nobody_runs_are_an_outage_not_a_configuration_error() -> None:
    port = free_port()
    url = f"redis+sentinel://127.0.0.1:{port}/foundry-test/0"
    client = connect(RedisSettings(url=url, retries=1))  # an outage is retried: keep it short

    with pytest.raises(foundry.QueueUnavailable, match="No master found") as raised:
        RedisQueue(client, prefix=unique_prefix("q")).stats("default")

    assert describe(client) == url
    assert not isinstance(raised.value, foundry.ConfigurationError)
    # Each sentinel by its address and what it said, not by redis-py's repr of its client.
    assert f"(127.0.0.1:{port}: Error 111 connecting" in str(raised.value)
    assert "redis.client.Redis(" not in str(raised.value)


def test_check_reports_the_sentinel_topology_and_what_a_failover_may_lose(
    redis_sentinel: SentinelGroup,
) -> None:
    env = {"REDIS_URL": redis_sentinel.url(), "COLUMNS": "300"}

    done = foundry_cli("check", env=env)
    strict = foundry_cli("check", "--strict", env=env)

    assert done.returncode == 0, done.stderr
    assert "Sentinel master 'foundry-test' (3 sentinels): master, 1 replica" in done.stdout
    assert "min-replicas-to-write is 0" in done.stderr
    assert "no replica is connected" not in done.stderr
    assert strict.returncode == 1
    assert "min-replicas-to-write 1" in strict.stderr


def test_check_warns_when_no_replica_is_left_to_promote_or_to_wait_for() -> None:
    group = SentinelGroup()  # its own: its replica dies
    try:
        group.kill(group.replica)
        master = group.master.client()
        while master.info("replication")["connected_slaves"]:
            time.sleep(0.02)
        client = connect(RedisSettings(url=group.url()))

        report = RedisQueue(client, prefix="q", durability=Durability(1)).check()
    finally:
        group.close()

    assert report.replicas == 0
    assert report.topology == "Sentinel master 'foundry-test' (3 sentinels): master, 0 replicas"
    assert any(w.startswith("no replica is connected to the master") for w in report.warnings)
    assert any("REDIS_WAIT_REPLICAS=1 but the master has 0" in w for w in report.warnings)


def test_a_new_connection_asks_the_first_sentinel_where_the_master_is_once(
    redis_sentinel: SentinelGroup,
) -> None:
    proxies = [FaultProxy(sentinel.port).start() for sentinel in redis_sentinel.sentinels]
    hosts = ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
    try:
        with foundry.connect(f"redis+sentinel://{hosts}/foundry-test/0") as fx:
            fx.queue.queues()  # one command, on one connection the client's pool opens
    finally:
        for proxy in proxies:
            proxy.close()

    # redis-py asks a sentinel SENTINEL MASTERS; the first one answers, the others are not asked
    assert [bytes(proxy.requests).upper().count(b"MASTERS") for proxy in proxies] == [1, 0, 0]
