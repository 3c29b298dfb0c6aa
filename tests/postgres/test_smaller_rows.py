"""Migration 0008 (smaller rows): what earlier releases stored reads the same after it, and
the claim workers of the previous release call still gives them whole blobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import psycopg
import pytest

from foundry.adapters.codec import Codec
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migration, Migrator, load_migrations
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import ErrorInfo, Job, JobState, Retry
from foundry.ports import ClaimRequest
from tests.postgres_server import unique_name

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
BEFORE_0008 = tuple(m for m in load_migrations() if m.version < 8)

# The previous release's enqueue call: whole blobs, errors and fence left to their defaults.
_ENQUEUE = """
    SELECT i FROM {s}.enqueue(
        ARRAY[%(queue)s], ARRAY[%(id)s], ARRAY[0], ARRAY[NULL::timestamptz],
        ARRAY['0'::interval], ARRAY[3], ARRAY[%(blob)s::bytea], ARRAY[NULL::text],
        ARRAY[NULL::interval], ARRAY[NULL::text], ARRAY[NULL::text], '{{}}'::integer[],
        '{{}}'::text[], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::bigint],
        '1 hour', NULL, NULL, NULL)
"""


@pytest.fixture
def settings(postgres_url: str) -> PostgresSettings:
    return PostgresSettings(postgres_url, schema=unique_name("s_"), pool_size=2)


def _migrate(settings: PostgresSettings, migrations: tuple[Migration, ...] = ()) -> None:
    Migrator(partial(connect, settings), settings.schema, migrations or None).migrate()


Closing = list[Callable[[], None]]


def _queue(settings: PostgresSettings, closing: Closing) -> PostgresQueue:
    queue = PostgresQueue(open_pool(settings, name="foundry-tests"), settings)
    closing.append(queue.close)
    return queue


def _store_as_before(settings: PostgresSettings, job: Job) -> None:
    with psycopg.connect(settings.url, autocommit=True) as conn:
        statement = _ENQUEUE.format(s=f'"{settings.schema}"')
        conn.execute(statement, {"queue": job.queue, "id": job.id, "blob": Codec().encode_job(job)})


def test_a_job_stored_before_0008_is_read_claimed_and_failed_the_same_after_it(
    settings: PostgresSettings, postgres_closing: Closing
) -> None:
    _migrate(settings, BEFORE_0008)
    job = Job("tests.old", {"n": 1}, queue="old")
    _store_as_before(settings, job)

    _migrate(settings)
    queue = _queue(settings, postgres_closing)

    record = queue.get(job.id)
    assert record is not None
    assert (record.job, record.state, record.errors) == (job, JobState.READY, ())
    [lease] = queue.claim(ClaimRequest(["old"], lease=LEASE))
    assert lease.job == job
    queue.fail(lease, ErrorInfo(type="E", message="m"), Retry(timedelta(0)))
    after = queue.get(job.id, "old")
    assert after is not None
    assert [error.type for error in after.errors] == ["E"]


def test_the_previous_release_s_claim_gets_whole_blobs_of_jobs_stored_now(
    settings: PostgresSettings, postgres_closing: Closing
) -> None:
    _migrate(settings)
    queue = _queue(settings, postgres_closing)
    job = Job("tests.new", {"n": 2}, queue="new")
    queue.enqueue(job)

    with psycopg.connect(settings.url, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT j.blob, c.blob FROM "{settings.schema}".jobs j, '
            f'"{settings.schema}".claim(ARRAY[%s], 1, %s, NULL, %s, NULL, true) c',
            ["new", LEASE, "w"],
        ).fetchone()
    assert row is not None
    stored, claimed = row

    assert b'"id"' not in bytes(stored)  # the row's columns hold it
    assert Codec().decode_job(bytes(claimed)) == job
