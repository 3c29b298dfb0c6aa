"""Migration 0010 (enqueue_one): a plain job dispatched alone is stored through enqueue_one,
every other call through enqueue; either call finds what the other stored, as the previous
release's enqueue call finds what this release stores."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.codec import Codec
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job, JobState, RunAfter
from foundry.ports import ClaimRequest, Enqueued
from tests.backends import LEASE, QueueOptions, postgres_queue, state_of

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
    options = QueueOptions(completed_ttl=timedelta(seconds=1))
    return postgres_queue(request.getfixturevalue, clock, options)


def _enqueue_as_before(queue: PostgresQueue, job: Job) -> list[tuple[int, str | None]]:
    with psycopg.connect(queue._db.settings.url, autocommit=True) as conn:
        statement = _ENQUEUE.format(s=f'"{queue.schema}"')
        params = {"queue": job.queue, "id": job.id, "blob": Codec().encode_job(job)}
        return conn.execute(statement, params).fetchall()


def _payload(queue: PostgresQueue, job_id: str) -> object:
    record = queue.get(job_id)
    assert record is not None
    return record.job.payload


def test_a_job_the_previous_release_stored_is_left_as_it_is_when_dispatched_again(
    queue: PostgresQueue,
) -> None:
    _enqueue_as_before(queue, Job("task", {"n": 1}, id="a"))

    outcome = queue.enqueue(Job("task", {"n": 2}, id="a"))

    assert outcome == Enqueued("a")
    assert _payload(queue, "a") == {"n": 1}
    assert queue.stats("default").ready == 1


def test_the_previous_release_enqueue_finds_a_job_stored_by_enqueue_one(
    queue: PostgresQueue,
) -> None:
    queue.enqueue(Job("task", {"n": 1}, id="a"))

    rows = _enqueue_as_before(queue, Job("task", {"n": 2}, id="a"))

    assert rows == [(1, None)]
    assert _payload(queue, "a") == {"n": 1}
    assert queue.stats("default").ready == 1


def test_enqueue_many_stores_anew_an_id_whose_ended_record_expired_and_keeps_a_stored_one(
    queue: PostgresQueue, clock: ManualClock
) -> None:
    queue.enqueue_many([Job("task", {"n": 1}, id="a"), Job("task", {"n": 1}, id="b")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)
    clock.advance(timedelta(seconds=1))

    outcomes = queue.enqueue_many([Job("task", {"n": 2}, id="a"), Job("task", {"n": 2}, id="b")])

    assert outcomes == [Enqueued("a"), Enqueued("b")]
    assert (state_of(queue, "a"), _payload(queue, "a")) == (JobState.READY, {"n": 2})
    assert (state_of(queue, "b"), _payload(queue, "b")) == (JobState.READY, {"n": 1})


def test_a_delayed_job_dispatched_alone_is_stored_delayed_and_a_ready_one_ready(
    queue: PostgresQueue,
) -> None:
    queue.enqueue(Job("task", id="later", schedule=RunAfter(timedelta(minutes=1))))
    queue.enqueue(Job("task", id="now"))

    assert (state_of(queue, "later"), state_of(queue, "now")) == (
        JobState.DELAYED,
        JobState.READY,
    )
    assert queue.queues() == ["default"]
