"""``dispatch(..., connection=conn)``: the job is written in the caller's own transaction."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

import foundry
from foundry.adapters.clock import ManualClock, SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.dispatcher import Dispatcher
from foundry.domain import ConfigurationError, JobState, UniqueSpec
from foundry.ports import ClaimRequest, Lease
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import QUEUE, add, registry
from tests.postgres_server import ThrowawayDatabase

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)


class Rollback(Exception):
    """Raised to leave a transaction block by rolling it back."""


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


@pytest.fixture
def dispatcher(queue: PostgresQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock(), transactions=queue)


def test_a_rolled_back_transaction_leaves_no_job(
    queue: PostgresQueue, dispatcher: Dispatcher, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        try:
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE orders (id integer)")
                job_id = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
                many = dispatcher.dispatch_many([(add, {"a": 2, "b": 2})], connection=conn)
                raise Rollback
        except Rollback:
            pass

    assert queue.get(job_id) is None
    assert queue.get(many[0]) is None
    assert queue.stats(QUEUE).pending == 0


def test_a_committed_job_is_claimable_and_the_commit_wakes_a_blocked_worker(
    request: pytest.FixtureRequest, postgres_url: str
) -> None:
    # A poll far longer than the join's bound: only the commit's NOTIFY can wake the claim.
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, None)
    worker = PostgresQueue(queue._db.pool, queue._db.settings, poll=timedelta(minutes=10))
    dispatcher = Dispatcher(queue, registry, SystemClock(), transactions=queue)
    events: list[str] = []
    claimed: list[Lease] = []

    def work() -> None:
        events.append("claiming")
        claimed.extend(worker.claim(ClaimRequest([QUEUE], lease=LEASE, wait=timedelta(minutes=5))))
        events.append("claimed")

    with psycopg.connect(postgres_url) as conn:
        with conn.transaction():
            job_id = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
            claimer = threading.Thread(target=work)
            claimer.start()
            while "claiming" not in events:
                threading.Event().wait(0.01)
            assert queue.get(job_id) is None  # not visible before the commit
            events.append("committing")
        events.append("committed")
        claimer.join(60)

    assert not claimer.is_alive(), "the commit did not wake the blocked claim"
    assert [lease.job_id for lease in claimed] == [job_id]
    assert events.index("committing") < events.index("claimed")


def test_the_callers_connection_settings_do_not_matter(
    queue: PostgresQueue, dispatcher: Dispatcher, postgres_url: str
) -> None:
    unique = UniqueSpec("order-7")
    with psycopg.connect(postgres_url, row_factory=dict_row) as conn:
        conn.execute("SET search_path TO pg_catalog")
        first = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn, unique=unique)
        second = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn, unique=unique)
        conn.commit()

    record = queue.get(first)
    assert record is not None
    assert record.state is JobState.READY
    assert second == first


@pytest.mark.parametrize("cursor_factory", [psycopg.ClientCursor, psycopg.RawCursor])
def test_the_callers_cursor_factory_does_not_matter(
    queue: PostgresQueue,
    dispatcher: Dispatcher,
    postgres_url: str,
    cursor_factory: type[psycopg.Cursor[object]],
) -> None:
    with psycopg.connect(postgres_url, cursor_factory=cursor_factory) as conn:
        one = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)
        many = dispatcher.dispatch_many([(add, {"a": 2, "b": 2})] * 2, connection=conn)
        chained = dispatcher.chain([(add, {"a": 3, "b": 2})] * 2, connection=conn)
        conn.commit()

    assert all(queue.get(job_id) is not None for job_id in [one, *many, *chained])


def test_connection_refuses_what_is_no_database_connection(dispatcher: Dispatcher) -> None:
    with pytest.raises(ConfigurationError, match="psycopg 3 Connection, a SQLAlchemy"):
        dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=object())


def test_connection_and_after_commit_together_are_refused(
    dispatcher: Dispatcher, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn, pytest.raises(ConfigurationError, match="not both"):
        dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn, after_commit=True)


def test_a_queue_outside_the_database_refuses_connection() -> None:
    dispatcher = Dispatcher(MemoryQueue(ManualClock()), registry, ManualClock())

    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=object())


def test_foundry_connect_on_postgres_dispatches_in_the_callers_transaction(
    queue: PostgresQueue, postgres_url: str
) -> None:
    settings = foundry.Settings(
        queue_driver="postgres",  # type: ignore[arg-type]
        database_url=postgres_url,
        database_schema=queue.schema,
    )
    with foundry.connect(settings) as fx, psycopg.connect(postgres_url) as conn:
        job_id = fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2}, connection=conn)
        assert queue.get(job_id) is None
        conn.commit()

    assert queue.get(job_id) is not None


def test_batch_and_chain_with_connection_need_a_queue_in_the_database() -> None:
    queue = MemoryQueue(ManualClock())
    dispatcher = Dispatcher(queue, registry, ManualClock(), batches=queue)
    steps = [(add, {"a": 1, "b": 2})]

    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        dispatcher.batch(steps, connection=object())
    with pytest.raises(ConfigurationError, match="QUEUE_DRIVER=postgres"):
        dispatcher.chain([*steps, dispatcher.build_batch(steps)], connection=object())
    assert queue.stats(QUEUE).pending == 0


def _a_dispatch_waits_on_a_lock(postgres_url: str) -> bool:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("second_through", ["connection", "pool"])
def test_a_unique_job_dispatched_while_a_transaction_holds_its_key_is_that_jobs_duplicate(
    queue: PostgresQueue, dispatcher: Dispatcher, postgres_url: str, second_through: str
) -> None:
    unique = UniqueSpec("invoice-9")
    answers: list[str] = []
    dispatcher.dispatch(add, {"a": 0, "b": 0})  # the queue's row exists: no wait on it
    with psycopg.connect(postgres_url) as holder, psycopg.connect(postgres_url) as other:
        lent = other if second_through == "connection" else None
        first = dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=holder, unique=unique)
        second = threading.Thread(
            target=lambda: answers.append(
                dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=lent, unique=unique)
            )
        )
        second.start()
        while not _a_dispatch_waits_on_a_lock(postgres_url):
            threading.Event().wait(0.01)
        holder.commit()
        second.join(60)
        other.commit()

    assert answers == [first]
    assert queue.stats(QUEUE).pending == 2


def test_a_lock_timeout_in_the_callers_transaction_reaches_the_caller_as_psycopg_raised_it(
    queue: PostgresQueue, dispatcher: Dispatcher, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as admin, psycopg.connect(postgres_url) as conn:
        admin.execute(f'LOCK TABLE "{queue.schema}".jobs IN ACCESS EXCLUSIVE MODE')
        conn.execute("SET lock_timeout = '50ms'")

        with pytest.raises(psycopg.errors.LockNotAvailable):
            dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)

        conn.rollback()
        admin.rollback()


def test_a_closed_connection_is_refused_naming_the_mistake(
    dispatcher: Dispatcher, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        pass

    with pytest.raises(ConfigurationError, match="connection= is closed"):
        dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)


def test_a_connection_to_another_database_is_refused_naming_both_databases(
    dispatcher: Dispatcher, postgres_database: ThrowawayDatabase, postgres_url: str
) -> None:
    with (
        psycopg.connect(postgres_database.url()) as conn,
        pytest.raises(ConfigurationError) as refused,
    ):
        dispatcher.dispatch(add, {"a": 1, "b": 2}, connection=conn)

    assert f"is to database {postgres_database.name!r}" in str(refused.value)
    assert f"in database {postgres_url.rpartition('/')[2]!r}" in str(refused.value)
    assert "is not there or older" not in str(refused.value)
