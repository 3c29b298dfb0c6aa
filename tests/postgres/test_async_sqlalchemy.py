"""The ``AsyncDispatcher`` with SQLAlchemy's asyncio sessions on ``postgresql+psycopg``:
``connection=`` an ``AsyncSession`` (or ``AsyncConnection``) writes the job in its transaction,
and ``SqlAlchemyCommitHooks`` over an ``AsyncSession`` sends it after the commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

import foundry
from foundry.adapters.clock import SystemClock
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.adapters.sqlalchemy.commit import SqlAlchemyCommitHooks
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.ports import ClaimRequest, CommitHooks
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import QUEUE, add, registry

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


def _engine(postgres_url: str) -> AsyncEngine:
    return create_async_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))


def _dispatcher(queue: PostgresQueue, hooks: CommitHooks | None = None) -> AsyncDispatcher:
    aqueue = AsyncPostgresQueue(queue._db.settings)
    return AsyncDispatcher(aqueue, registry, SystemClock(), transactions=aqueue, commit_hooks=hooks)


def _claimed(queue: PostgresQueue) -> list[str]:
    leases = queue.claim(ClaimRequest([QUEUE], lease=timedelta(seconds=30), limit=10))
    return [lease.job_id for lease in leases]


def test_an_async_session_given_as_connection_holds_the_job_until_it_commits(
    queue: PostgresQueue, postgres_url: str
) -> None:
    dispatcher = _dispatcher(queue)

    async def main() -> tuple[str, str, object, object]:
        engine = _engine(postgres_url)
        async with async_sessionmaker(engine)() as session:
            await session.execute(text("SELECT 1"))
            dropped = await dispatcher.dispatch(add, {"a": 1, "b": 1}, connection=session)
            await session.rollback()
            kept = await dispatcher.dispatch(add, {"a": 2, "b": 2}, connection=session)
            unseen = queue.get(kept)
            await session.commit()
        async with engine.begin() as conn:
            also = await dispatcher.dispatch(add, {"a": 3, "b": 3}, connection=conn)
        await engine.dispose()
        return dropped, kept, unseen, also

    dropped, kept, unseen, also = asyncio.run(main())

    assert unseen is None
    assert queue.get(dropped) is None
    assert _claimed(queue) == [kept, also]


def test_commit_hooks_over_an_async_session_send_after_its_commit_and_never_after_a_rollback(
    queue: PostgresQueue, postgres_url: str
) -> None:
    engine = _engine(postgres_url)
    session = async_sessionmaker(engine)()
    dispatcher = _dispatcher(queue, SqlAlchemyCommitHooks(lambda: session))

    async def main() -> tuple[str, str, object]:
        await session.execute(text("SELECT 1"))
        dropped = await dispatcher.dispatch(add, {"a": 1, "b": 1}, after_commit=True)
        await session.rollback()
        await session.execute(text("SELECT 1"))
        kept = await dispatcher.dispatch(add, {"a": 2, "b": 2}, after_commit=True)
        unseen = queue.get(kept)
        await session.commit()
        await dispatcher.flush()
        await session.close()
        await engine.dispose()
        return dropped, kept, unseen

    dropped, kept, unseen = asyncio.run(main())

    assert unseen is None
    assert queue.get(dropped) is None
    assert _claimed(queue) == [kept]


def test_foundry_connect_takes_an_async_session_for_connection(
    queue: PostgresQueue, postgres_url: str
) -> None:
    settings = foundry.Settings(
        queue_driver="postgres", database_url=postgres_url, database_schema=queue.schema
    )

    async def main() -> str:
        engine = _engine(postgres_url)
        async with foundry.connect(settings) as fx, async_sessionmaker(engine)() as session:
            job_id = await fx.async_dispatcher(registry).dispatch(
                add, {"a": 1, "b": 2}, connection=session
            )
            await session.commit()
        await engine.dispose()
        return job_id

    job_id = asyncio.run(main())

    assert _claimed(queue) == [job_id]
