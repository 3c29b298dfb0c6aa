"""Jobs, dead letters, leases, batches and workers on a PostgreSQL session whose time zone is
not UTC: every moment the queue gives back is in UTC, as on the other backends, sync and
asyncio alike (so the dashboard's and CLI's times read the same whatever the server's
TimeZone)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.domain import Batch, Dead, ErrorInfo, Job, RunAfter
from foundry.ports import ClaimRequest, WorkerInfo
from tests.backends import LEASE, FixtureLookup, postgres_queue

pytestmark = pytest.mark.postgres

NEW_YORK = "options=-c%20timezone%3DAmerica/New_York"


def _offsets(*moments: datetime | None) -> list[timedelta | None]:
    return [moment.utcoffset() for moment in moments if moment is not None]


def test_every_moment_read_back_on_a_new_york_session_is_in_utc(
    request: pytest.FixtureRequest, clock: ManualClock
) -> None:
    def fixture(name: str) -> object:
        value = request.getfixturevalue(name)
        return f"{value}?{NEW_YORK}" if name == "postgres_url" else value

    lookup: FixtureLookup = fixture
    queue = postgres_queue(lookup, clock)
    queue.enqueue_many([Job("task", id="a"), Job("task", id="later", schedule=RunAfter(LEASE))])
    queue.enqueue_batches([Batch([Job("task", id="m")], id="b")])
    [lease, member] = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
    queue.complete(member)
    now = clock.now()
    queue.heartbeat(WorkerInfo("h:1", "h", 1, ("default",), 1, now, now), LEASE)

    [letter] = queue.dead("default")
    later, batch = queue.get("later"), queue.batch("b")
    [worker] = queue.workers()
    twin = asyncio.run(_read_async(queue._db.settings, clock))

    assert later is not None
    assert batch is not None
    moments = [lease.deadline, letter.died_at, later.enqueued_at, later.run_at]
    moments += [batch.created_at, batch.finished_at, worker.started_at, worker.seen_at, *twin]
    assert _offsets(*moments) == [timedelta(0)] * len(moments)


async def _read_async(settings: object, clock: ManualClock) -> list[datetime | None]:
    twin = AsyncPostgresQueue(settings, clock=clock)  # type: ignore[arg-type]
    try:
        record = await twin.get("a")
        assert record is not None
        return [record.enqueued_at, record.finished_at]
    finally:
        await twin.aclose()
