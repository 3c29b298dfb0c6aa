"""Migration 0011 (jobs.state's CHECK as one array constant): a state outside the seven is
still refused, and a job stored before it is claimed and completed the same after it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import psycopg
import pytest

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migrator, load_migrations
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job, JobState
from foundry.ports import ClaimRequest
from tests.postgres_server import unique_name

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
BEFORE_0011 = tuple(m for m in load_migrations() if m.version < 11)

Closing = list[Callable[[], None]]


@pytest.fixture
def settings(postgres_url: str) -> PostgresSettings:
    return PostgresSettings(postgres_url, schema=unique_name("s_"), pool_size=2)


def _queue(settings: PostgresSettings, closing: Closing) -> PostgresQueue:
    queue = PostgresQueue(open_pool(settings, name="foundry-tests"), settings)
    closing.append(queue.close)
    return queue


def test_a_state_outside_the_seven_is_refused(
    settings: PostgresSettings, postgres_closing: Closing
) -> None:
    Migrator(partial(connect, settings), settings.schema).migrate()
    queue = _queue(settings, postgres_closing)
    queue.enqueue(Job("task", id="a"))

    with (
        psycopg.connect(settings.url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(f'UPDATE "{settings.schema}".jobs SET state = %s', ["finished"])


def test_a_job_stored_before_0011_is_claimed_and_completed_after_it(
    settings: PostgresSettings, postgres_closing: Closing
) -> None:
    Migrator(partial(connect, settings), settings.schema, BEFORE_0011).migrate()
    before = _queue(settings, postgres_closing)
    before.enqueue(Job("task", id="a"))

    Migrator(partial(connect, settings), settings.schema).migrate()
    queue = _queue(settings, postgres_closing)
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)

    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.COMPLETED
