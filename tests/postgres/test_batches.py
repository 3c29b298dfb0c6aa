"""Batches with ``QUEUE_DRIVER=postgres`` end to end: ``foundry.connect()``'s dispatcher, a
chain with a batch step drained by ``foundry work``, ``foundry batch show|list|cancel`` and the
dashboard's batch API, each as a user reaches it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.connection import open_pool
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Batch, Callback, Job, JobState
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.entrypoints.settings import Settings
from foundry.ports import ClaimRequest
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import LEDGER, QUEUE, add, registry
from tests.e2e.test_demo import run_foundry

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(request: pytest.FixtureRequest, postgres_url: str) -> dict[str, str]:
    """The environment of an app on a fresh, migrated schema."""
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, None)
    return {
        "QUEUE_DRIVER": "postgres",
        "DATABASE_URL": postgres_url,
        "DATABASE_SCHEMA": queue.schema,
    }


@pytest.fixture
def connection(env: dict[str, str]) -> Iterator[foundry.Connection]:
    with foundry.connect(Settings.from_env(env)) as made:
        yield made


@pytest.mark.slow
def test_a_chain_with_a_batch_step_runs_in_order_under_foundry_work(
    env: dict[str, str], connection: foundry.Connection, tmp_path: Path
) -> None:
    dispatcher = connection.dispatcher(registry)
    members = [(add, {"a": n, "b": 10}) for n in range(6)]
    sums = dispatcher.build_batch(members, then=(add, {"a": 100, "b": 0}), batch_id="sums")
    ids = dispatcher.chain([(add, {"a": -1, "b": 0}), sums, (add, {"a": 200, "b": 0})])
    ledger = tmp_path / "ledger"
    ledger.touch()

    worked = run_foundry(
        "work",
        "--app",
        "tests.e2e.apps:registry",
        "--burst",
        "--concurrency",
        "2",
        env={**env, LEDGER: str(ledger)},
    )

    assert worked.returncode == 0, worked.stdout + worked.stderr
    lines = ledger.read_text().splitlines()
    assert lines[0] == "add -1 0"
    assert sorted(lines[1:7]) == sorted(f"add {n} 10" for n in range(6))
    assert sorted(lines[7:]) == ["add 100 0", "add 200 0"]
    record = dispatcher.batch_record("sums")
    assert (record.state, record.progress.completed) == ("succeeded", 6)
    assert connection.queue.get(ids[-1], QUEUE).state is JobState.COMPLETED  # type: ignore[union-attr]
    shown = run_foundry("batch", "show", "sums", env=env)
    listed = run_foundry("batch", "list", "--queue", QUEUE, env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"queue={QUEUE}  state=succeeded" in shown.stdout
    assert "members: 6  pending: 0  completed: 6  failed: 0  cancelled: 0" in shown.stdout
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "sums" in listed.stdout


def test_foundry_batch_cancel_cancels_the_pending_members(
    env: dict[str, str], connection: foundry.Connection
) -> None:
    dispatcher = connection.dispatcher(registry)
    dispatcher.batch([(add, {"a": n, "b": 0}) for n in range(3)], batch_id="albums")

    cancelled = run_foundry("batch", "cancel", "albums", "--reason", "wrong album", env=env)

    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    said = cancelled.stdout.strip()
    assert said == "batch albums is cancelled: 3 job(s) cancelled, 0 still running"
    record = dispatcher.batch_record("albums")
    assert (record.state, record.reason) == ("cancelled", "wrong album")


def test_the_dashboard_lists_shows_and_cancels_batches(connection: foundry.Connection) -> None:
    dispatcher = connection.dispatcher(registry)
    dispatcher.batch([(add, {"a": 1, "b": 1})], batch_id="b1")
    box = connection._container
    config = DashboardConfig(GuardConfig(token=None), background=False)
    app = create_app(
        box.queue(), box.workers(), box.schedules(), box.clock(), config, batches=box.batches()
    )

    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        page = client.get(f"/batches?queue={QUEUE}")
        listed = client.get(f"/api/batches?queue={QUEUE}").json()
        one = client.get("/api/batches/b1").json()
        headers = {"X-CSRF-Token": config.guard.csrf}
        cancelled = client.post("/api/batches/b1/cancel", json={"reason": "no"}, headers=headers)

    assert page.status_code == 200
    assert "keeps no batches" not in page.text
    assert "b1" in page.text
    assert [entry["id"] for entry in listed["batches"]] == ["b1"]
    assert one["state"] == "running"
    assert cancelled.status_code == 200, cancelled.text
    assert dispatcher.batch_record("b1").state == "cancelled"


def test_the_last_two_members_ending_in_two_transactions_at_once_fire_then_once(
    request: pytest.FixtureRequest, postgres_url: str
) -> None:
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, None)
    members = [Job("noop", id="a"), Job("noop", id="b")]
    queue.enqueue_batches([Batch(members, {Callback.THEN: Job("cb", id="t")}, id="pair")])
    first, second = queue.claim(ClaimRequest(["default"], lease=timedelta(minutes=1), limit=2))
    complete = sql.SQL(
        "SELECT * FROM {}.complete(%s::text[], %s::text[], %s::text[], %s::bytea[], "
        "interval '1 hour', NULL)"
    ).format(sql.Identifier(queue.schema))
    # The second end goes through a pool of one connection, whose count of ends lands in a
    # shard row (pid % 16) the first's does not: the batch's row is all the two share.
    settings = attrs.evolve(queue._db.settings, pool_size=1)
    other = PostgresQueue(open_pool(settings), settings)
    fixture("postgres_closing").append(other.close)
    with _connect_apart(postgres_url, _pid_of(other)) as conn:
        # First member's end counted, its transaction still open: it holds the batch's row.
        conn.execute(complete, [["default"], [first.job_id], [first.token], [None]])
        ending = threading.Thread(target=other.complete, args=(second,))
        ending.start()
        _wait_for_a_lock_wait(postgres_url)
        conn.commit()
    ending.join(timeout=60)

    record = queue.batch("pair")
    assert record is not None
    assert (record.state, record.progress.completed) == ("succeeded", 2)
    assert record.fired == {Callback.THEN, Callback.FINALLY}
    claimed = queue.claim(ClaimRequest(["default"], lease=timedelta(minutes=1), limit=5))
    assert [lease.job_id for lease in claimed] == ["t"]


def _pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _pid_of(queue: PostgresQueue) -> int:
    with queue._db.conn() as conn:
        return _pid(conn)


def _connect_apart(url: str, pid: int) -> psycopg.Connection[Any]:
    """A connection whose server process counts ends in another shard than ``pid``'s."""
    while True:
        conn = psycopg.connect(url)
        if _pid(conn) % 16 != pid % 16:
            return conn
        conn.close()


def _wait_for_a_lock_wait(url: str) -> None:
    """Until a session of this database waits for a row lock (the second member's end)."""
    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(6000):
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            watcher.execute("SELECT pg_sleep(0.01)")
    raise AssertionError("the second member's end never waited for the batch's row")


def test_the_reaper_deletes_an_ended_batch_once_its_time_is_up(
    request: pytest.FixtureRequest,
) -> None:
    fixture: FixtureLookup = request.getfixturevalue
    clock = ManualClock()
    queue = postgres_queue(fixture, clock)
    queue.enqueue_batches([Batch([Job("noop", id="a")], id="short")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(minutes=1)))
    queue.complete(lease)
    queue.reap()
    kept = _batch_rows(queue)

    clock.advance(timedelta(hours=1, seconds=1))  # the queue keeps ended records an hour
    queue.reap()

    assert kept == 1
    assert _batch_rows(queue) == 0


def _batch_rows(queue: PostgresQueue) -> int:
    with queue._db.conn() as conn:
        query = sql.SQL("SELECT count(*) FROM {}.batches").format(sql.Identifier(queue.schema))
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])
