"""``AsyncDispatcher.result`` on PostgreSQL: the waits of one event loop share one listening
connection, as the sync queue's threads do, rather than opening one each."""

from __future__ import annotations

import asyncio

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.domain import ResultTimeout
from foundry.ports import ClaimRequest
from tests.backends import LEASE, FixtureLookup, postgres_queue
from tests.e2e.apps import QUEUE, add, registry

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


def _listening(queue: PostgresQueue) -> int:
    """The connections listening on this queue's schema (other tests share the database)."""
    with queue._db.conn() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'LISTEN%%' AND position(%s in query) > 0",
            (queue._db.settings.schema,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _listened(queue: PostgresQueue) -> int:
    """The listening connections once the first is seen (a loaded machine may take a while to
    open it) and the other waits have had time to open theirs, were they to."""
    deadline = asyncio.get_running_loop().time() + 30
    while await asyncio.to_thread(_listening, queue) == 0:
        assert asyncio.get_running_loop().time() < deadline, "no wait ever listened"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    return await asyncio.to_thread(_listening, queue)


def test_many_waits_share_one_listening_connection_and_each_is_woken(
    queue: PostgresQueue,
) -> None:
    aqueue = AsyncPostgresQueue(queue._db.settings)
    dispatcher = AsyncDispatcher(aqueue, registry, SystemClock())

    async def main() -> tuple[int, int, object, list[object]]:
        before = await asyncio.to_thread(_listening, queue)
        idle = [await dispatcher.dispatch(add, {"a": n, "b": 0}, queue="idle") for n in range(12)]
        job_id = await dispatcher.dispatch(add, {"a": 2, "b": 3})
        waiting = [asyncio.create_task(dispatcher.result(i, timeout=2)) for i in idle]
        wanted = asyncio.create_task(dispatcher.result(job_id, timeout=60))
        during = await _listened(queue)
        [lease] = await asyncio.to_thread(queue.claim, ClaimRequest([QUEUE], lease=LEASE))
        await asyncio.to_thread(queue.complete, lease, 5)
        result = await wanted
        timeouts = await asyncio.gather(*waiting, return_exceptions=True)
        await aqueue.aclose()
        return before, during, result, [type(error) for error in timeouts]

    before, during, result, timeouts = asyncio.run(main())

    assert during - before == 1
    assert result == 5
    assert timeouts == [ResultTimeout] * 12


def test_one_queue_serves_one_event_loop_after_another_with_concurrent_calls(
    queue: PostgresQueue,
) -> None:
    aqueue = AsyncPostgresQueue(queue._db.settings)
    dispatcher = AsyncDispatcher(aqueue, registry, SystemClock())

    async def dispatched() -> int:
        ids = await asyncio.gather(*(dispatcher.dispatch(add, {"a": n, "b": 0}) for n in range(5)))
        records = await asyncio.gather(*(aqueue.get(job_id) for job_id in ids))
        return sum(record is not None for record in records)

    counts = [asyncio.run(dispatched()) for _ in range(3)]
    asyncio.run(aqueue.aclose())

    assert counts == [5, 5, 5]
