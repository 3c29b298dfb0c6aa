"""Migration 0013: a job never takes the id of a batch its queue keeps, through every enqueue
path (the pooled one, the caller's transaction, the asyncio queue); the previous release's
``enqueue`` call still stores what it stored. Migration 0017: a later batch never takes the id
of a callback its queue has not enqueued yet, and a batch keeps its member list (none for a
batch stored before)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.codec import Codec
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import Batch, BatchNotFound, Callback, InvalidJob, Job, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE, postgres_queue, state_of

pytestmark = pytest.mark.postgres

# The previous release's enqueue call of one plain job.
_ENQUEUE = """
    SELECT i, existing FROM {s}.enqueue(
        ARRAY[%(queue)s], ARRAY[%(id)s], ARRAY[0], ARRAY[NULL::timestamptz],
        ARRAY['0'::interval], ARRAY[3], ARRAY[%(blob)s::bytea], ARRAY[NULL::text],
        ARRAY[NULL::interval], ARRAY[NULL::text], ARRAY['dead'], '{{}}'::integer[],
        '{{}}'::text[], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::bigint],
        '1 hour', NULL, NULL, NULL)
"""


@pytest.fixture
def queue(request: pytest.FixtureRequest, clock: ManualClock) -> PostgresQueue:
    made = postgres_queue(request.getfixturevalue, clock)
    made.enqueue_batches([Batch([Job("task", id="a")], {Callback.THEN: Job("t", id="t")}, id="b1")])
    return made


def test_a_job_taking_a_kept_batchs_id_in_the_callers_transaction_is_refused(
    queue: PostgresQueue,
) -> None:
    with (
        psycopg.connect(queue._db.settings.url) as conn,
        pytest.raises(InvalidJob, match="'b1' is a batch's id in queue 'default'"),
    ):
        queue.enqueue_within(conn, [Job("task", id="b1")])

    assert state_of(queue, "b1") is None


def test_the_asyncio_queue_refuses_a_job_taking_a_kept_batchs_id(
    queue: PostgresQueue, clock: ManualClock
) -> None:
    async def enqueue_both() -> None:
        twin = AsyncPostgresQueue(queue._db.settings, clock=clock)
        try:
            for jobs in ([Job("task", id="b1")], [Job("task", id="x"), Job("task", id="b1")]):
                with pytest.raises(InvalidJob, match="'b1' is a batch's id"):
                    await twin.enqueue_many(jobs)
        finally:
            await twin.aclose()

    asyncio.run(enqueue_both())

    assert [state_of(queue, name) for name in ("b1", "x")] == [None, None]


def test_the_previous_release_enqueue_call_still_stores_its_job(queue: PostgresQueue) -> None:
    job = Job("task", id="old")

    with psycopg.connect(queue._db.settings.url, autocommit=True) as conn:
        statement = _ENQUEUE.format(s=f'"{queue.schema}"')
        params = {"queue": job.queue, "id": job.id, "blob": Codec().encode_job(job)}
        rows = conn.execute(statement, params).fetchall()

    assert rows == [(1, None)]
    assert state_of(queue, "old") is JobState.READY


def test_a_later_batch_taking_a_pending_callbacks_id_is_refused_on_every_path(
    queue: PostgresQueue, clock: ManualClock
) -> None:
    later = Batch([Job("task", id="n")], id="t")
    with (
        psycopg.connect(queue._db.settings.url) as conn,
        pytest.raises(InvalidJob, match="'t' is the then callback of batch 'b1'"),
    ):
        queue.enqueue_batches_within(conn, [later])

    async def enqueue_later() -> None:
        twin = AsyncPostgresQueue(queue._db.settings, clock=clock)
        try:
            with pytest.raises(InvalidJob, match="'t' is the then callback of batch 'b1'"):
                await twin.enqueue_batches([later])
        finally:
            await twin.aclose()

    asyncio.run(enqueue_later())

    assert (state_of(queue, "n"), queue.batch("t")) == (None, None)
    [member] = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    queue.complete(member)
    assert state_of(queue, "t") is JobState.READY


def test_a_batch_stored_before_its_member_list_was_kept_says_how_to_wait(
    queue: PostgresQueue, clock: ManualClock
) -> None:
    with psycopg.connect(queue._db.settings.url, autocommit=True) as conn:
        conn.execute(
            queue._db.sql.render("UPDATE {s}.batches SET members = NULL")
        )  # as 0016 left it
    dispatcher = Dispatcher(queue, JobRegistry(), clock, batches=queue)

    assert queue.members("b1", "default") is None
    with pytest.raises(BatchNotFound, match=r"keeps no list of its jobs.*result\(job_id\)"):
        dispatcher.batch_results("b1", timeout=0)
