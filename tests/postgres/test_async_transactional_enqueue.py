"""``await AsyncDispatcher.dispatch(..., connection=aconn)``: the job is written in the caller's
own psycopg ``AsyncConnection`` transaction."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg.rows import dict_row

import foundry
from foundry.adapters.clock import ManualClock, SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.memory.async_queue import AsyncMemoryQueue
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.job_maker import Item
from foundry.domain import Batch, ConfigurationError, InvalidJob, JobState, UniqueSpec
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import QUEUE, add, registry
from tests.postgres_server import ThrowawayDatabase

pytestmark = pytest.mark.postgres


class Rollback(Exception):
    """Raised to leave a transaction block by rolling it back."""


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


def _dispatcher(queue: PostgresQueue) -> AsyncDispatcher:
    aqueue = AsyncPostgresQueue(queue._db.settings)
    return AsyncDispatcher(aqueue, registry, SystemClock(), transactions=aqueue)


def test_a_rolled_back_transaction_leaves_no_job(queue: PostgresQueue, postgres_url: str) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> list[str]:
        ids: list[str] = []
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            try:
                async with conn.transaction():
                    ids.append(await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn))
                    ids += await dispatcher.dispatch_many(
                        [(add, {"a": 2, "b": 2})], connection=conn
                    )
                    raise Rollback
            except Rollback:
                pass
        return ids

    ids = asyncio.run(main())

    assert [queue.get(job_id) for job_id in ids] == [None, None]
    assert queue.stats(QUEUE).pending == 0


def test_a_job_exists_once_the_callers_transaction_commits(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)
    seen: list[object] = []

    async def main() -> str:
        connecting = psycopg.AsyncConnection.connect(postgres_url)
        async with await connecting as conn, conn.transaction():
            job_id = await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
            seen.append(queue.get(job_id))
        return job_id

    job_id = asyncio.run(main())

    record = queue.get(job_id)
    assert seen == [None]  # not visible before the commit
    assert record is not None
    assert record.state is JobState.READY


def test_the_callers_connection_settings_do_not_matter(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)
    unique = UniqueSpec("order-7")

    async def main() -> tuple[str, str]:
        connecting = psycopg.AsyncConnection.connect(postgres_url, row_factory=dict_row)
        async with await connecting as conn:
            await conn.execute("SET search_path TO pg_catalog")
            payload = {"a": 1, "b": 2}
            first = await dispatcher.dispatch(add, payload, connection=conn, unique=unique)
            second = await dispatcher.dispatch(add, payload, connection=conn, unique=unique)
            await conn.commit()
        return first, second

    first, second = asyncio.run(main())

    assert second == first
    assert queue.get(first) is not None


def test_an_unknown_dependency_is_invalid_and_the_transaction_is_the_callers(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn, after=["nope"])

    with pytest.raises(InvalidJob, match="after"):
        asyncio.run(main())


def test_a_sync_connection_is_refused_naming_the_async_one(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    with psycopg.connect(postgres_url) as conn, pytest.raises(ConfigurationError, match="Async"):
        asyncio.run(dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn))


def test_connection_and_after_commit_together_are_refused(queue: PostgresQueue) -> None:
    dispatcher = _dispatcher(queue)

    with pytest.raises(ConfigurationError, match="not both"):
        asyncio.run(
            dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=object(), after_commit=True)
        )


def test_a_queue_outside_the_database_refuses_connection() -> None:
    aqueue = AsyncMemoryQueue(MemoryQueue(ManualClock()))
    dispatcher = AsyncDispatcher(aqueue, registry, ManualClock())

    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        asyncio.run(dispatcher.dispatch_many([(add, {"a": 1, "b": 2})], connection=object()))


def test_foundry_connect_on_postgres_dispatches_in_the_callers_transaction(
    queue: PostgresQueue, postgres_url: str
) -> None:
    settings = foundry.Settings(
        queue_driver="postgres",
        database_url=postgres_url,
        database_schema=queue.schema,
    )

    async def main() -> tuple[str, object]:
        async with (
            foundry.connect(settings) as fx,
            await psycopg.AsyncConnection.connect(postgres_url) as conn,
        ):
            dispatcher = fx.async_dispatcher(registry)
            job_id = await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
            before = queue.get(job_id)
            await conn.commit()
        return job_id, before

    job_id, before = asyncio.run(main())

    assert before is None
    assert queue.get(job_id) is not None


def test_a_batch_and_a_chain_with_a_batch_step_join_the_callers_transaction(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)
    seen: list[object] = []

    async def main() -> tuple[str, list[str]]:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            try:
                async with conn.transaction():
                    gone = [(add, {"a": 1, "b": 1})]
                    await dispatcher.batch(gone, batch_id="gone", connection=conn)
                    raise Rollback
            except Rollback:
                pass
            async with conn.transaction():
                middle = dispatcher.build_batch([(add, {"a": n, "b": 0}) for n in range(3)])
                steps: list[Item | Batch] = [
                    (add, {"a": 0, "b": 0}),
                    middle,
                    (add, {"a": 9, "b": 9}),
                ]
                ids = await dispatcher.chain(steps, connection=conn)
                seen.append(queue.batch(middle.id))
        return middle.id, ids

    middle, ids = asyncio.run(main())

    assert seen == [None]  # not visible before the commit
    assert queue.batch("gone") is None
    assert queue.get("gone") is None
    record = queue.batch(middle)
    assert record is not None
    assert (record.state, record.progress.total) == ("running", 3)
    assert ids[1] == middle
    assert [queue.get(ids[0]), queue.get(ids[2])] != [None, None]


def test_a_chain_of_jobs_is_written_in_the_callers_transaction(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> list[str]:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            try:
                async with conn.transaction():
                    ids = await dispatcher.chain([(add, {"a": 1, "b": 2})] * 2, connection=conn)
                    raise Rollback
            except Rollback:
                pass
            async with conn.transaction():
                return ids + await dispatcher.chain([(add, {"a": 3, "b": 4})] * 2, connection=conn)

    dropped_first, dropped_second, first, second = asyncio.run(main())

    assert [queue.get(dropped_first), queue.get(dropped_second)] == [None, None]
    kept = [queue.get(first), queue.get(second)]
    assert [record.state if record else None for record in kept] == [
        JobState.READY,
        JobState.WAITING,
    ]


def test_a_batch_member_depending_on_an_unknown_job_is_invalid_in_the_transaction(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            member = dispatcher.build(add, {"a": 1, "b": 2}, after=["nope"])
            await dispatcher.batch([member], connection=conn)

    with pytest.raises(InvalidJob, match="nope"):
        asyncio.run(main())


def test_batch_and_chain_with_connection_need_a_queue_in_the_database() -> None:
    store = MemoryQueue(ManualClock())
    aqueue = AsyncMemoryQueue(store)
    dispatcher = AsyncDispatcher(aqueue, registry, ManualClock(), batches=aqueue)
    steps = [(add, {"a": 1, "b": 2})]

    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        asyncio.run(dispatcher.batch(steps, connection=object()))
    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        asyncio.run(dispatcher.chain([*steps, dispatcher.build_batch(steps)], connection=object()))
    assert store.stats(QUEUE).pending == 0


def test_a_lock_timeout_in_the_callers_transaction_reaches_the_caller_as_psycopg_raised_it(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> None:
        async with (
            await psycopg.AsyncConnection.connect(postgres_url) as admin,
            await psycopg.AsyncConnection.connect(postgres_url) as conn,
        ):
            await admin.execute(f'LOCK TABLE "{queue.schema}".jobs IN ACCESS EXCLUSIVE MODE')
            await conn.execute("SET lock_timeout = '50ms'")
            try:
                await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
            finally:
                await conn.rollback()
                await admin.rollback()

    with pytest.raises(psycopg.errors.LockNotAvailable):
        asyncio.run(main())


def test_a_closed_connection_is_refused_naming_the_mistake(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            pass
        await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)

    with pytest.raises(ConfigurationError, match="connection= is closed"):
        asyncio.run(main())


def test_a_connection_to_another_database_is_refused_naming_both_databases(
    queue: PostgresQueue, postgres_database: ThrowawayDatabase
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_database.url()) as conn:
            await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)

    with pytest.raises(ConfigurationError, match=f"is to database {postgres_database.name!r}"):
        asyncio.run(main())


def test_the_callers_cursor_factory_does_not_matter(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> list[str]:
        async with await psycopg.AsyncConnection.connect(
            postgres_url, cursor_factory=psycopg.AsyncRawCursor
        ) as conn:
            ids = [await dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)]
            ids += await dispatcher.chain([(add, {"a": 3, "b": 2})] * 2, connection=conn)
            await conn.commit()
        return ids

    ids = asyncio.run(main())

    assert all(queue.get(job_id) is not None for job_id in ids)
