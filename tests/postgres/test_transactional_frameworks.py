"""``dispatch(..., connection=)`` with what Django and SQLAlchemy apps hold: a SQLAlchemy
``Session`` or ``Connection`` on ``postgresql+psycopg``, Django's ``connection`` inside
``atomic``. A rollback leaves no job; a commit makes it claimable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import NullPool

from foundry.adapters.clock import SystemClock
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.application.dispatcher import Dispatcher
from foundry.domain import ConfigurationError
from foundry.ports import ClaimRequest
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import QUEUE, add, registry

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


class Rollback(Exception):
    """Raised to leave a transaction block by rolling it back."""


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


@pytest.fixture
def dispatcher(queue: PostgresQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock(), transactions=queue)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield made
    made.dispose()


def _claimed(queue: PostgresQueue) -> list[str]:
    leases = queue.claim(ClaimRequest([QUEUE], lease=timedelta(seconds=30), limit=10))
    return [lease.job_id for lease in leases]


def test_a_sqlalchemy_session_s_rollback_drops_the_job_and_its_commit_keeps_it(
    queue: PostgresQueue, dispatcher: Dispatcher, engine: Engine
) -> None:
    with Session(engine) as session:
        session.execute(text("CREATE TEMP TABLE orders (id integer)"))
        dropped = dispatcher.dispatch(add, {"a": 1, "b": 1}, connection=session)
        session.rollback()
        kept = dispatcher.dispatch(add, {"a": 2, "b": 2}, connection=session)
        unseen = queue.get(kept)
        session.commit()

    assert unseen is None  # not before the commit
    assert queue.get(dropped) is None
    assert _claimed(queue) == [kept]


def test_a_sqlalchemy_connection_and_a_scoped_session_write_in_their_transactions(
    queue: PostgresQueue, dispatcher: Dispatcher, engine: Engine
) -> None:
    try:
        with engine.begin() as conn:
            dropped = dispatcher.dispatch(add, {"a": 1, "b": 1}, connection=conn)
            raise Rollback
    except Rollback:
        pass
    with engine.begin() as conn:
        kept = dispatcher.dispatch(add, {"a": 2, "b": 2}, connection=conn)
    scoped = scoped_session(sessionmaker(engine))
    also = dispatcher.dispatch(add, {"a": 3, "b": 3}, connection=scoped)
    scoped.commit()
    scoped.remove()

    assert queue.get(dropped) is None
    assert _claimed(queue) == [kept, also]


def test_a_batch_and_a_chain_with_a_batch_step_join_the_session_s_transaction(
    queue: PostgresQueue, dispatcher: Dispatcher, engine: Engine
) -> None:
    with Session(engine) as session:
        dropped = dispatcher.batch([(add, {"a": 1, "b": 1})], batch_id="gone", connection=session)
        session.rollback()
        middle = dispatcher.build_batch([(add, {"a": n, "b": 0}) for n in range(3)], batch_id="mid")
        steps = dispatcher.chain(
            [(add, {"a": 0, "b": 0}), middle, (add, {"a": 9, "b": 9})], connection=session
        )
        unseen = queue.batch("mid")
        session.commit()

    assert unseen is None  # not before the commit
    assert queue.batch(dropped) is None
    assert queue.get("gone") is None
    record = queue.batch("mid")
    assert record is not None
    assert (record.state, record.progress.total) == ("running", 3)
    assert _claimed(queue) == [steps[0]]


def test_a_sqlalchemy_session_on_another_driver_is_refused_naming_it(
    dispatcher: Dispatcher,
) -> None:
    engine = create_engine("sqlite://", poolclass=NullPool)
    with Session(engine) as session, pytest.raises(ConfigurationError, match="sqlite3"):
        dispatcher.dispatch(add, {"a": 1, "b": 1}, connection=session)


@pytest.mark.slow
def test_django_s_connection_inside_atomic_rolls_back_and_commits_with_the_job(
    queue: PostgresQueue, postgres_url: str
) -> None:
    env = {
        "QUEUE_DRIVER": "postgres",
        "DATABASE_URL": postgres_url,
        "DATABASE_SCHEMA": queue.schema,
        "FOUNDRY_LOG_LEVEL": "WARNING",
    }
    ran = subprocess.run(
        [sys.executable, "-m", "tests.postgres.django_enqueue"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    dropped, kept = ran.stdout.split()
    assert queue.get(dropped) is None
    assert _claimed(queue) == [kept]
