"""The asyncio queue on a real Redis: concurrent dispatches share one connection, and what
the sync queue survives (a flushed library, a killed connection, a broken queue, an outage)
the async one survives too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
import redis.asyncio

import foundry
from foundry.adapters.redis.async_queue import AsyncRedisQueue
from foundry.adapters.redis.connection import RedisSettings, connect_async
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState, QueueBroken, QueueUnavailable
from foundry.ports import ClaimRequest, Enqueued
from tests.backends import unique_prefix
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis


def _pair(url: str, name: str = "foundry-tests") -> tuple[AsyncRedisQueue, RedisQueue]:
    """An async queue (a client as ``foundry.connect`` makes it) and a sync one, same keys."""
    prefix = unique_prefix("aq")
    client = connect_async(RedisSettings(url=url, client_name=name))
    return AsyncRedisQueue(client, prefix=prefix), RedisQueue(
        redis.Redis.from_url(url), prefix=prefix
    )


def _connections(url: str, name: str) -> int:
    clients = redis.Redis.from_url(url).client_list()
    return sum(1 for client in clients if client["name"] == name)


def test_a_hundred_concurrent_enqueues_share_one_connection_and_all_land(redis_url: str) -> None:
    name = f"aq-{uuid.uuid4().hex[:8]}"
    aqueue, queue = _pair(redis_url, name)

    async def main() -> tuple[list[object], int]:
        jobs = [Job("t", id=f"j{n}", payload={"n": n}) for n in range(100)]
        outcomes = await asyncio.gather(*(aqueue.enqueue(job) for job in jobs))
        opened = _connections(redis_url, name)
        await aqueue.aclose()
        return list(outcomes), opened

    outcomes, opened = asyncio.run(main())

    assert outcomes == [Enqueued(f"j{n}") for n in range(100)]
    assert opened == 1
    assert queue.stats("default").ready == 100
    assert queue.queues() == ["default"]


def test_enqueue_after_function_flush_loads_the_library_and_stores_the_job_once(
    redis_url: str,
) -> None:
    aqueue, queue = _pair(redis_url)
    admin = redis.Redis.from_url(redis_url)

    async def main() -> list[object]:
        await aqueue.enqueue(Job("t", id="a"))
        admin.function_flush()
        outcomes = list(
            await asyncio.gather(aqueue.enqueue(Job("t", id="b")), aqueue.enqueue(Job("t", id="a")))
        )
        admin.function_flush()
        outcomes += await aqueue.enqueue_many([Job("t", id="c"), Job("t", id="d")])
        await aqueue.aclose()
        return outcomes

    outcomes = asyncio.run(main())

    assert outcomes == [Enqueued("b"), Enqueued("a"), Enqueued("c"), Enqueued("d")]
    assert queue.stats("default").ready == 4


def test_a_killed_connection_is_reopened_and_the_enqueue_sent_again(redis_url: str) -> None:
    name = f"aq-{uuid.uuid4().hex[:8]}"
    aqueue, queue = _pair(redis_url, name)

    async def main() -> object:
        await aqueue.enqueue(Job("t", id="a"))
        _kill(redis_url, name)
        outcome = await aqueue.enqueue(Job("t", id="b"))
        await aqueue.aclose()
        return outcome

    assert asyncio.run(main()) == Enqueued("b")
    assert queue.stats("default").ready == 2


def _kill(url: str, name: str) -> None:
    admin = redis.Redis.from_url(url)
    for client in admin.client_list():
        if client["name"] == name:
            admin.client_kill_filter(_id=client["id"])


def test_a_key_of_the_wrong_type_is_a_broken_queue_naming_the_key(redis_url: str) -> None:
    aqueue, queue = _pair(redis_url)
    prefix = queue._keys.prefix
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:fifo", "x")

    async def main() -> None:
        try:
            await aqueue.enqueue(Job("t", queue="b"))
        finally:
            await aqueue.aclose()

    with pytest.raises(QueueBroken, match=r"\{b\}:fifo is a string, not a list") as raised:
        asyncio.run(main())

    assert raised.value.queue == "b"


def test_enqueue_many_names_the_queue_that_refused_its_jobs_and_stores_the_others(
    redis_url: str,
) -> None:
    aqueue, queue = _pair(redis_url)
    redis.Redis.from_url(redis_url).set(f"{queue._keys.prefix}:{{b}}:fifo", "x")

    async def main() -> None:
        try:
            await aqueue.enqueue_many([Job("t", id="a1", queue="a"), Job("t", queue="b")])
        finally:
            await aqueue.aclose()

    with pytest.raises(QueueBroken, match=r"\{b\}:fifo is a string, not a list") as raised:
        asyncio.run(main())
    stored = queue.get("a1")

    assert raised.value.queue == "b"
    assert stored is not None
    assert stored.state is JobState.READY


def test_an_unreachable_redis_is_queue_unavailable_after_bounded_retries() -> None:
    settings = RedisSettings(
        url=f"redis://127.0.0.1:{free_port()}/0",
        retries=1,
        backoff_base=timedelta(milliseconds=1),
        connect_timeout=timedelta(milliseconds=200),
    )
    aqueue = AsyncRedisQueue(connect_async(settings), prefix=unique_prefix("aq"))

    with pytest.raises(QueueUnavailable, match="unreachable during enqueue") as raised:
        asyncio.run(aqueue.enqueue(Job("t", id="lost")))

    assert raised.value.job_id == "lost"


def test_a_cancelled_enqueue_leaves_the_others_of_its_batch_alone(redis_url: str) -> None:
    aqueue, queue = _pair(redis_url)

    async def main() -> list[object]:
        tasks = [asyncio.create_task(aqueue.enqueue(Job("t", id=f"j{n}"))) for n in range(5)]
        await asyncio.sleep(0)
        tasks[2].cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await aqueue.aclose()
        return outcomes

    outcomes = asyncio.run(main())

    assert [outcomes[n] for n in (0, 1, 3, 4)] == [Enqueued(f"j{n}") for n in (0, 1, 3, 4)]
    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert queue.stats("default").ready in (4, 5)  # sent before it was cancelled, or not


def test_a_call_cancelled_while_its_reply_is_awaited_keeps_the_connection(redis_url: str) -> None:
    name = f"aq-{uuid.uuid4().hex[:8]}"
    aqueue, queue = _pair(redis_url, name)
    admin = redis.Redis.from_url(redis_url)

    async def main() -> tuple[object, list[int], list[int]]:
        await aqueue.enqueue(Job("t", id="first"))
        before = [c["id"] for c in admin.client_list() if c["name"] == name]
        waiting = asyncio.create_task(aqueue.enqueue(Job("t", id="cancelled")))
        await asyncio.sleep(0)  # written; its reply is awaited
        waiting.cancel()
        outcome = await aqueue.enqueue(Job("t", id="after"))
        after = [c["id"] for c in admin.client_list() if c["name"] == name]
        await aqueue.aclose()
        return outcome, before, after

    outcome, before, after = asyncio.run(main())

    assert outcome == Enqueued("after")
    assert before == after  # the same connection: the cancelled call's reply was read and dropped
    assert len(before) == 1
    assert queue.stats("default").ready == 3  # the cancelled call was written: it ran


def test_one_queue_serves_one_event_loop_after_another(redis_url: str) -> None:
    aqueue, queue = _pair(redis_url)

    first = asyncio.run(aqueue.enqueue(Job("t", id="a")))
    second = asyncio.run(aqueue.enqueue(Job("t", id="b")))

    assert (first, second) == (Enqueued("a"), Enqueued("b"))
    assert queue.get("b") is not None


def test_a_connected_async_dispatcher_stores_what_the_sync_one_reads(redis_url: str) -> None:
    registry = foundry.JobRegistry()

    @registry.job(name="mail.welcome", queue="mail")
    def welcome(user_id: int) -> None:
        pass

    settings = foundry.Settings(redis_url=redis_url, queue_prefix=unique_prefix("aq"))

    async def main() -> list[str]:
        async with foundry.connect(settings) as fx:
            dispatcher = fx.async_dispatcher(registry)
            one = await dispatcher.dispatch(welcome, {"user_id": 1}, delay=timedelta(minutes=5))
            many = await dispatcher.dispatch_many([(welcome, {"user_id": n}) for n in (2, 3)])
            return [one, *many]

    ids = asyncio.run(main())

    with foundry.connect(settings) as fx:
        states = [fx.queue.get(job_id).state for job_id in ids]  # type: ignore[union-attr]
    assert states == [JobState.DELAYED, JobState.READY, JobState.READY]


def test_a_redis_that_does_not_answer_is_queue_unavailable_while_it_still_holds_the_call(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings = RedisSettings(
        url=server.url,
        socket_timeout=timedelta(milliseconds=200),
        retries=1,
        backoff_base=timedelta(milliseconds=1),
    )
    aqueue = AsyncRedisQueue(connect_async(settings), prefix=unique_prefix("aq"))
    asyncio.run(aqueue.enqueue(Job("t", id="first")))
    admin = server.client()
    # Writes (every enqueue) wait until the test lifts the pause, reads still answer: the
    # enqueue must give up within its socket timeout, while Redis still holds its call.
    admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    try:
        with pytest.raises(QueueUnavailable, match="unreachable during enqueue") as raised:
            asyncio.run(aqueue.enqueue(Job("t", id="stuck")))
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")

    assert raised.value.job_id == "stuck"
    assert asyncio.run(aqueue.enqueue(Job("t", id="after"))) == Enqueued("after")


def test_more_waiters_than_the_pool_has_connections_all_get_their_results(
    redis_url: str,
) -> None:
    prefix = unique_prefix("aq")
    client = connect_async(RedisSettings(url=redis_url, pool_size=2))
    aqueue, queue = (
        AsyncRedisQueue(client, prefix=prefix),
        RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix),
    )
    ids = [f"w{n}" for n in range(6)]

    async def main() -> list[object]:
        for job_id in ids:
            await aqueue.enqueue(Job("t", id=job_id))
        waits = [asyncio.create_task(aqueue.wait(job_id, timedelta(seconds=60))) for job_id in ids]
        await asyncio.sleep(0.2)  # every waiter is blocked, or queued for a connection
        for lease in await asyncio.to_thread(
            queue.claim, ClaimRequest(["default"], limit=6, lease=timedelta(seconds=30))
        ):
            await asyncio.to_thread(queue.complete, lease, lease.job.id)
        records = await asyncio.gather(*waits, return_exceptions=True)
        await aqueue.aclose()
        await client.aclose()
        return [getattr(record, "result", record) for record in records]

    assert asyncio.run(main()) == ids
