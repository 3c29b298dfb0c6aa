"""A batch the previous release stored on PostgreSQL (before migration 0017: no member list)
still ends, fires its callbacks once, and is shown like any other; waiting for its results
says how to wait for its jobs instead."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.domain import BatchNotFound
from tests.backends import postgres_queue
from tests.batch_upgrade_support import (
    check_a_cancel_ends_it,
    check_it_ended_and_every_view_answers,
    old_batch,
    registry,
)

pytestmark = pytest.mark.postgres

_NO_LIST = r"batch 'old' keeps no list of its jobs.*wait for each of its jobs with result\(job_id\)"


@pytest.fixture
def old_queue(request: pytest.FixtureRequest, clock: ManualClock) -> PostgresQueue:
    """A queue holding batch ``old`` as the previous release wrote it: its row without the
    ``members`` column's list."""
    queue = postgres_queue(request.getfixturevalue, clock)
    queue.enqueue_batches([old_batch()])
    with psycopg.connect(queue._db.settings.url, autocommit=True) as conn:
        conn.execute(queue._db.sql.render("UPDATE {s}.batches SET members = NULL"))
    return queue


def test_a_batch_stored_without_its_member_list_ends_and_runs_its_callbacks(
    old_queue: PostgresQueue, clock: ManualClock
) -> None:
    check_it_ended_and_every_view_answers(old_queue, clock)


def test_waiting_for_a_batch_stored_without_its_member_list_says_how_to_wait(
    old_queue: PostgresQueue, clock: ManualClock
) -> None:
    dispatcher = Dispatcher(old_queue, registry, clock, batches=old_queue)

    with pytest.raises(BatchNotFound, match=_NO_LIST):
        dispatcher.batch_results("old", timeout=0)
    with pytest.raises(BatchNotFound, match=_NO_LIST):
        asyncio.run(_awaited(old_queue, clock))
    check_it_ended_and_every_view_answers(old_queue, clock)
    with pytest.raises(BatchNotFound, match=_NO_LIST):
        dispatcher.batch_results("old", timeout=0)
    assert [dispatcher.result(f"m{n}", timeout=0) for n in range(3)] == [0, 1, 2]


async def _awaited(queue: PostgresQueue, clock: ManualClock) -> list[int]:
    twin = AsyncPostgresQueue(queue._db.settings, clock=clock)
    try:
        dispatcher = AsyncDispatcher(twin, registry, clock, batches=twin)
        return await dispatcher.batch_results("old", timeout=0)
    finally:
        await twin.aclose()


def test_a_cancel_of_a_batch_stored_the_old_way_fires_finally_alone(
    old_queue: PostgresQueue, clock: ManualClock
) -> None:
    check_a_cancel_ends_it(old_queue, clock)
