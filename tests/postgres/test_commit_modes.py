"""Which transitions wait for the WAL flush: an enqueue and a claim that takes jobs do (an
acknowledged dispatch survives a crash; a job never starts on a claim a crash could undo), a
completion does not (a crash re-runs such a job after its lease, never loses it) unless it
also reports the start of a job held ahead (a start lost in a crash would give back the
attempt of a job that ran).
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from foundry.adapters.postgres.queue import PostgresQueue
from foundry.ports import ClaimRequest
from tests.backends import LEASE, FixtureLookup, job, postgres_queue

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


def _commit_mode(conn: psycopg.Connection) -> str:
    row = conn.execute("SHOW synchronous_commit").fetchone()
    assert row is not None
    return str(row[0])


def test_an_enqueue_in_the_callers_transaction_keeps_its_commit_synchronous(
    queue: PostgresQueue, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        queue.enqueue_within(conn, [job(id="a")])

        assert _commit_mode(conn) == "on"


def test_a_completion_commits_without_waiting_for_the_flush_a_claim_does_not(
    queue: PostgresQueue, postgres_url: str
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    schema = sql.Identifier(queue.schema)
    with psycopg.connect(postgres_url) as conn:
        claimed = conn.execute(
            sql.SQL(
                "SELECT id FROM {}.claim(ARRAY['default'], 1, %s, NULL, 'w', NULL, true)"
            ).format(schema),
            [LEASE],
        ).fetchall()
        claim_mode = _commit_mode(conn)
        conn.rollback()
        applied = conn.execute(
            sql.SQL(
                "SELECT applied FROM {}.complete(ARRAY['default'], ARRAY[%s], ARRAY[%s], "
                "ARRAY[NULL]::bytea[], %s, NULL)"
            ).format(schema),
            [lease.job_id, lease.token, timedelta(hours=1)],
        ).fetchall()
        complete_mode = _commit_mode(conn)
        conn.commit()

        assert (claimed, applied) == ([("b",)], [(True,)])
        assert (claim_mode, complete_mode) == ("on", "off")
        assert _commit_mode(conn) == "on"  # off for the completion's own transaction only


@pytest.mark.parametrize(("ready", "mode"), [(["b"], "on"), ([], "off")])
def test_a_completion_with_the_next_claim_waits_for_the_flush_only_if_it_claimed(
    queue: PostgresQueue, postgres_url: str, ready: list[str], mode: str
) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.enqueue_many([job(id=job_id) for job_id in ready])
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT n, id FROM {}.complete_and_claim(ARRAY['default'], ARRAY[%s], "
                "ARRAY[%s], ARRAY[NULL]::bytea[], %s, ARRAY['default'], 1, %s, NULL, 'w', NULL, "
                "true)"
            ).format(sql.Identifier(queue.schema)),
            [lease.job_id, lease.token, timedelta(hours=1), LEASE],
        ).fetchall()

        assert rows == [(-1, None), *((1, job_id) for job_id in ready)]
        assert _commit_mode(conn) == mode


@pytest.mark.parametrize(("report_start", "mode"), [(True, "on"), (False, "off")])
def test_a_completion_that_reports_a_held_jobs_start_waits_for_the_flush(
    queue: PostgresQueue, postgres_url: str, report_start: bool, mode: str
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    done, held = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2, ahead=1))
    started = [held] if report_start else []
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT n, id FROM {}.complete_and_claim(ARRAY['default'], ARRAY[%s], "
                "ARRAY[%s], ARRAY[NULL]::bytea[], %s, ARRAY['default'], 1, %s, NULL, 'w', NULL, "
                "true, 0, %s::text[], %s::text[], %s::text[])"
            ).format(sql.Identifier(queue.schema)),
            [
                done.job_id,
                done.token,
                timedelta(hours=1),
                LEASE,
                [lease.queue for lease in started],
                [lease.job_id for lease in started],
                [lease.token for lease in started],
            ],
        ).fetchall()

        assert (held.job_id, rows) == ("b", [(-1, None)])
        assert _commit_mode(conn) == mode
