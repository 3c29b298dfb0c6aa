"""A waiting claim on PostgreSQL: the round a NOTIFY wakes claims the job that woke it."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.connection import open_pool
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.ports import ClaimRequest, Lease
from tests.backends import LEASE, FixtureLookup, job, postgres_queue

pytestmark = pytest.mark.postgres


def _claim_ran(postgres_url: str, schema: str) -> bool:
    """Whether a connection has finished a claim round on ``schema`` (and sits idle)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query LIKE %s",
            [f'%"{schema}".claim(%'],
        ).fetchone()
    return bool(row and row[0])


def test_a_job_enqueued_while_a_claim_waits_is_claimed_by_the_round_its_notify_wakes(
    request: pytest.FixtureRequest, postgres_url: str
) -> None:
    # The worker's poll outlasts its wait: only the enqueue's NOTIFY can start another round
    # before the wait runs out. The clock stands still, so a remembered token never expires.
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, ManualClock())
    settings = queue._db.settings
    worker = PostgresQueue(
        open_pool(settings), settings, clock=queue._db.clock, poll=timedelta(minutes=10)
    )
    fixture("postgres_closing").append(worker.close)
    claimed: list[Lease] = []
    waiting = ClaimRequest(["default"], lease=LEASE, wait=timedelta(minutes=1), claim_token="t1")
    claimer = threading.Thread(target=lambda: claimed.extend(worker.claim(waiting)), daemon=True)
    claimer.start()
    while not _claim_ran(postgres_url, queue.schema):  # the first round found nothing
        threading.Event().wait(0.01)

    queue.enqueue(job(id="a"))
    claimer.join(120)

    assert not claimer.is_alive(), "the NOTIFY did not end the wait"
    assert [lease.job_id for lease in claimed] == ["a"]


def test_a_claim_that_waited_in_vain_remembers_its_empty_answer(
    request: pytest.FixtureRequest,
) -> None:
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, ManualClock())
    waiting = ClaimRequest(
        ["default"], lease=LEASE, wait=timedelta(milliseconds=20), claim_token="t1"
    )
    first = queue.claim(waiting)
    queue.enqueue(job(id="a"))

    again = queue.claim(waiting)

    assert first == again == []
    assert queue.stats("default").ready == 1
